"""Integrator clients: secrets hashed, shown once, never in reprs; rate limits per client."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from core.state import StateStore
from portal_api.clients import add_client, authenticate_client, hash_secret, secret_matches
from portal_api.errors import Conflict, InvalidRequest, RateLimited, Unauthenticated
from portal_api.ratelimit import RateLimiter


def test_secret_is_stored_hashed_and_checked(tmp_path: Path) -> None:
    state = StateStore.open(tmp_path)
    client = add_client(state, "hanoi-portal")
    assert client.client_secret not in repr(client)
    with state.read() as conn:
        stored = conn.execute(sa.text("SELECT secret_hash FROM portal_clients")).scalar_one()
    assert client.client_secret not in stored and stored.startswith("scrypt$")
    assert authenticate_client(state, client.client_id, client.client_secret).name == "hanoi-portal"
    for cid, secret in ((client.client_id, "wrong"), ("cl_unknown", client.client_secret)):
        with pytest.raises(Unauthenticated) as caught:
            authenticate_client(state, cid, secret)
        assert client.client_secret not in str(caught.value)
    with pytest.raises(Conflict):
        add_client(state, "hanoi-portal")
    with pytest.raises(InvalidRequest):
        add_client(state, "bad/name")


def test_hashes_are_salted() -> None:
    one, two = hash_secret("same"), hash_secret("same")
    assert one != two and secret_matches("same", one) and secret_matches("same", two)
    assert not secret_matches("other", one) and not secret_matches("same", "md5$x$y")


def test_token_bucket_refills_at_the_clients_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(lambda who: 2.0, clock=lambda: now[0])
    for _ in range(4):  # burst of twice the rate
        limiter.take("client:a")
    with pytest.raises(RateLimited) as caught:
        limiter.take("client:a")
    assert caught.value.retry_after_s == pytest.approx(0.5)
    limiter.take("client:b")  # others are not affected
    now[0] = 0.5
    limiter.take("client:a")
