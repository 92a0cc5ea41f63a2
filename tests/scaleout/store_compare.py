"""Read a data directory's measurement tables into comparable frames."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from core.measurements import MeasurementStore

# Columns that name a run (when, which batch) rather than what it computed.
RUN_STAMPS = {"bills": {"created_at"}, "readings": {"source"}}  # source: the poll batch id


def contents(data_dir: Path) -> dict[str, pl.DataFrame]:
    """Every committed table, sorted by all its columns, run stamps left out."""
    store = MeasurementStore(data_dir)
    out: dict[str, pl.DataFrame] = {}
    if not store.root.exists():
        return out
    for folder in sorted(p for p in store.root.iterdir() if p.is_dir()):
        frame = store.table(folder.name).scan().collect()
        frame = frame.drop([c for c in RUN_STAMPS.get(folder.name, set()) if c in frame.columns])
        sortable = [c for c, t in frame.schema.items() if not isinstance(t, pl.List | pl.Struct)]
        out[folder.name] = frame.sort(sortable)
    return out


def differences(left: dict[str, pl.DataFrame], right: dict[str, pl.DataFrame]) -> list[str]:
    """Human-readable differences; empty when both stores hold the same rows."""
    problems = []
    for name in sorted(set(left) | set(right)):
        if name not in left or name not in right:
            problems.append(f"table {name} only on one side")
        elif not left[name].equals(right[name]):
            problems.append(f"table {name}: {left[name].shape} vs {right[name].shape}")
    return problems
