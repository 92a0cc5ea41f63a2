"""The outbox through a portal outage, dropped replies and a publisher restart."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from portal_world import ALICE, BOB, bill_row, make_settings, publish_bills
from pydantic import SecretStr

from core.config import Settings
from core.state import StateStore
from portal_api import outbox
from portal_api.errors import NotConfigured
from portal_api.publisher import publish_pending
from portal_api.standin import Intake, run_intake_standin

SECRET = "s3cret-for-tests"


def configured(data_dir: Path, intake: Intake, secret: str = SECRET) -> Settings:
    settings = make_settings(data_dir)
    settings.portal.intake_url = intake.url
    settings.portal.token_url = intake.token_url
    settings.portal.client_id = intake.client_id
    settings.portal.client_secret = SecretStr(secret)
    return settings


def many_bills(count: int) -> list[dict[str, object]]:
    return [bill_row(f"PD05{i:09d}", "2026-10", bill_id=f"B{i:06d}") for i in range(count)]


def test_every_issued_bill_arrives_once_with_its_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    state = StateStore.open(data_dir)
    publish_bills(data_dir, [bill_row(ALICE, "2026-10"), bill_row(BOB, "2026-10"),
                             bill_row(ALICE, "2026-11", status="draft")])
    with run_intake_standin(client_secret=SECRET) as intake:
        report = publish_pending(state, data_dir, settings=configured(data_dir, intake))
        assert report.enqueued == 2 and report.acknowledged == 2
        assert set(intake.received) == {outbox.idempotency_key(f"B202610{c[-6:]}", 1) for c in (ALICE, BOB)}
        # A second run finds nothing new and sends nothing.
        again = publish_pending(state, data_dir, settings=configured(data_dir, intake))
        assert again.enqueued == 0 and again.attempts == 0
        assert intake.requests == 2
    assert outbox.counts(state)["acknowledged"] == 2


@pytest.mark.slow
def test_outage_then_recovery_loses_nothing_and_keeps_each_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    state = StateStore.open(data_dir)
    publish_bills(data_dir, many_bills(30))
    with run_intake_standin(client_secret=SECRET) as intake:
        settings = configured(data_dir, intake)
        intake.set_down(True)
        down = publish_pending(state, data_dir, settings=settings, deadline_s=0.5, backoff_s=0.05)
        assert down.enqueued == 30 and down.acknowledged == 0 and down.retried >= 30
        assert outbox.counts(state)["pending"] == 30
        assert all(e.last_error for e in outbox.entries(state, states=["pending"]))
        # The portal returns, but loses every third reply after storing the bill.
        intake.set_down(False)
        intake.drop(10, after_storing=True)
        up = publish_pending(state, data_dir, settings=settings, deadline_s=20, backoff_s=0.05)
        assert up.enqueued == 0
    assert outbox.counts(state)["acknowledged"] == 30
    assert len(intake.received) == 30
    assert intake.duplicates == 10  # the dropped replies were sent again, and kept once


def test_invalid_credentials_keep_bills_pending_with_the_reason(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    state = StateStore.open(data_dir)
    publish_bills(data_dir, many_bills(3))
    with run_intake_standin(client_secret=SECRET) as intake:
        report = publish_pending(state, data_dir, settings=configured(data_dir, intake, "wrong"),
                                 deadline_s=0.2, backoff_s=0.05)
    assert report.acknowledged == 0
    entries = outbox.entries(state, states=["pending"])
    assert len(entries) == 3 and all("401" in (e.last_error or "") for e in entries)
    assert "wrong" not in repr(report) and SECRET not in repr(report)


def test_a_rejected_bill_is_failed_with_the_portals_reason(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    state = StateStore.open(data_dir)
    publish_bills(data_dir, many_bills(2))
    with run_intake_standin(client_secret=SECRET) as intake:
        intake.fail(1, status=422)
        report = publish_pending(state, data_dir, settings=configured(data_dir, intake), concurrency=1)
    assert report.failed == 1 and report.acknowledged == 1
    failed = outbox.entries(state, states=["failed"])
    assert len(failed) == 1 and "422" in (failed[0].last_error or "")


def _publish_in_child(data_dir: str, url: str, token_url: str, client_id: str) -> None:
    settings = make_settings(Path(data_dir))
    settings.portal.intake_url, settings.portal.token_url = url, token_url
    settings.portal.client_id, settings.portal.client_secret = client_id, SecretStr(SECRET)
    publish_pending(StateStore.open(Path(data_dir)), Path(data_dir), settings=settings, deadline_s=60,
                    backoff_s=0.05, concurrency=1, batch=5, timeout_s=0.5, lease_s=2.0)


@pytest.mark.slow
def test_publisher_killed_mid_run_then_restarted(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    state = StateStore.open(data_dir)
    publish_bills(data_dir, many_bills(40))
    with run_intake_standin(client_secret=SECRET) as intake:
        intake.slow(0.05)
        context = multiprocessing.get_context("spawn")
        child = context.Process(target=_publish_in_child,
                                args=(str(data_dir), intake.url, intake.token_url, intake.client_id))
        child.start()
        # Kill it once some bills have been acknowledged, others not.
        for _ in range(400):
            if outbox.counts(state)["acknowledged"] >= 5:
                break
            child.join(timeout=0.05)
        child.kill()
        child.join(timeout=10)
        assert 0 < outbox.counts(state)["acknowledged"] < 40
        intake.slow(0)
        # A claim left by the dead publisher lapses; a new run picks everything up.
        report = publish_pending(state, data_dir, settings=configured(data_dir, intake), deadline_s=60,
                                 backoff_s=0.05, timeout_s=0.5)
        assert report.outbox["acknowledged"] == 40
    assert len(intake.received) == 40


def test_missing_configuration_is_named(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with pytest.raises(NotConfigured, match="intake_url"):
        publish_pending(StateStore.open(data_dir), data_dir, settings=make_settings(data_dir))
