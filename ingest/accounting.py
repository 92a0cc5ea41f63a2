"""Every reading accounted for: the ingest report and its log in the operational store.

For every batch, readings in = stored + duplicates + quarantined; estimates made are
reported beside, never counted as readings in.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ingest.errors import IngestError


@dataclass
class BatchCount:
    path: str
    sha256: str
    rows_in: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


@dataclass
class IngestReport:
    run_id: str
    batches: int = 0
    readings_in: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    estimates: int = 0
    estimates_by_method: dict[str, int] = field(default_factory=dict)
    partitions: int = 0
    days_aggregated: int = 0
    per_batch: list[BatchCount] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time by stage

    @property
    def balanced(self) -> bool:
        return self.readings_in == self.stored + self.duplicates + self.quarantined

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "batches": self.batches,
            "readings_in": self.readings_in,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "quarantined_by_reason": self.quarantined_by_reason,
            "estimates": self.estimates,
            "estimates_by_method": self.estimates_by_method,
            "partitions": self.partitions,
            "days_aggregated": self.days_aggregated,
            "balanced": self.balanced,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def tally(counts: dict[int, BatchCount], outcomes: pl.DataFrame) -> None:
    """Add one partition's outcomes (batch, outcome, reason, rows) to the batch counts."""
    for batch, outcome, reason, rows in outcomes.iter_rows():
        count = counts[batch]
        if outcome == "stored":
            count.stored += rows
        elif outcome == "duplicate":
            count.duplicates += rows
        else:
            count.quarantined += rows
            count.reasons[str(reason)] += rows


def finish(report: IngestReport, counts: dict[int, BatchCount]) -> None:
    reasons: Counter[str] = Counter()
    for count in counts.values():
        if count.rows_in != count.stored + count.duplicates + count.quarantined:
            raise IngestError(
                f"batch {count.path}: {count.rows_in} readings in but {count.stored} stored, "
                f"{count.duplicates} duplicates and {count.quarantined} quarantined",
                hint="this is a bug in ingest; the batch was not marked as taken, so a fix can rerun it",
            )
        report.per_batch.append(count)
        report.readings_in += count.rows_in
        report.stored += count.stored
        report.duplicates += count.duplicates
        report.quarantined += count.quarantined
        reasons.update(count.reasons)
    report.batches = len(counts)
    report.quarantined_by_reason = dict(sorted(reasons.items()))


def record(conn: Connection, report: IngestReport) -> None:
    """Log every batch and mark it taken, in the caller's transaction."""
    for count in report.per_batch:
        conn.execute(
            sa.text(
                "INSERT INTO ingest_log (run_id, batch_path, sha256, rows_in, stored, duplicates, "
                "quarantined, reasons, estimates) VALUES (:run, :path, :sha, :rows_in, :stored, :dups, "
                ":quarantined, :reasons, :estimates)"
            ),
            {
                "run": report.run_id,
                "path": count.path,
                "sha": count.sha256,
                "rows_in": count.rows_in,
                "stored": count.stored,
                "dups": count.duplicates,
                "quarantined": count.quarantined,
                "reasons": json.dumps(dict(count.reasons), sort_keys=True),
                "estimates": report.estimates,
            },
        )
        conn.execute(
            sa.text(
                "INSERT INTO landing_taken (batch_path, sha256, rows_in) VALUES (:path, :sha, :rows) "
                "ON CONFLICT (batch_path) DO NOTHING"
            ),
            {"path": count.path, "sha": count.sha256, "rows": count.rows_in},
        )
