"""Signed tokens: round trip, and any change to a token, key, kind or clock refuses it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal_api import tokens
from portal_api.errors import Unauthenticated

KEY = b"k" * 32
subjects = st.text(min_size=1, max_size=40)


@given(subjects, st.sampled_from(["client", "customer"]))
def test_round_trip(subject: str, kind: tokens.Kind) -> None:
    token = tokens.issue(KEY, kind, subject, ttl_s=60, now=1000)
    claims = tokens.verify(KEY, token, (kind,), now=1059)
    assert (claims.kind, claims.subject, claims.expires_at) == (kind, subject, 1060)


@given(subjects, st.data())
def test_any_altered_character_is_refused(subject: str, data: st.DataObject) -> None:
    token = tokens.issue(KEY, "customer", subject, ttl_s=60, now=1000)
    i = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from("AZaz09-_.").filter(lambda c: c != token[i]))
    forged = token[:i] + replacement + token[i + 1:]
    with pytest.raises(Unauthenticated):
        claims = tokens.verify(KEY, forged, now=1001)
        # base64 padding bits can absorb a change in the last character and leave the same bytes
        assert claims.subject == subject
        raise Unauthenticated("same claims")


def test_expiry_key_and_kind() -> None:
    token = tokens.issue(KEY, "customer", "PD01000000001", ttl_s=60, now=1000)
    with pytest.raises(Unauthenticated, match="expired"):
        tokens.verify(KEY, token, now=1060)
    with pytest.raises(Unauthenticated, match="signature"):
        tokens.verify(b"other", token, now=1001)
    with pytest.raises(Unauthenticated, match="customer token cannot be used here"):
        tokens.verify(KEY, token, ("client",), now=1001)
    with pytest.raises(Unauthenticated, match="malformed"):
        tokens.verify(KEY, "x" * 2000, now=1001)
