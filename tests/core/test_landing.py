from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from core.errors import ContractError
from core.landing import list_batches, write_batch
from core.reading import Reading, to_frame

NOW = dt.datetime(2026, 11, 2, 3, 0, tzinfo=dt.UTC)


def _frame():  # type: ignore[no-untyped-def]
    return to_frame([
        Reading(meter_id="M1", quantity="1.0.1.8.0.255", ts=NOW, value=5, scale=0, unit="kWh", read_at=NOW)
    ])


def test_batch_lands_under_its_arrival_day_and_reads_back(data_dir: Path) -> None:
    batch = write_batch(data_dir, _frame(), now=NOW)
    assert batch.path.parent.name == "arrived=2026-11-02"
    assert [b.batch_id for b in list_batches(data_dir)] == [batch.batch_id]
    assert batch.read().equals(_frame())
    assert len(batch.sha256()) == 64


def test_temporaries_of_a_killed_writer_are_never_listed(data_dir: Path) -> None:
    batch = write_batch(data_dir, _frame(), now=NOW)
    (batch.path.parent / ".tmp-poll-dead.parquet").write_bytes(b"PAR1 half")
    assert [b.path for b in list_batches(data_dir)] == [batch.path]


def test_a_frame_off_contract_is_refused_before_landing(data_dir: Path) -> None:
    with pytest.raises(ContractError, match="missing column"):
        write_batch(data_dir, _frame().drop("ts"), now=NOW)
    assert list(list_batches(data_dir)) == []


def test_an_unreadable_batch_names_its_path(data_dir: Path) -> None:
    batch = write_batch(data_dir, _frame(), now=NOW)
    batch.path.write_bytes(b"garbage")
    with pytest.raises(ContractError) as info:
        batch.read()
    assert str(batch.path) in str(info.value)
