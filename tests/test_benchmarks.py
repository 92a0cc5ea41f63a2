"""Every benchmark still runs: each is started with --quick (a small size) as a smoke test.

The figures are printed, never asserted: timings belong in benchmarks, not tests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("*.py"))


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("script", BENCHMARKS, ids=[b.stem for b in BENCHMARKS])
def test_benchmark_runs_quick(script: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script), "--quick"],
        cwd=tmp_path, capture_output=True, text=True, timeout=280, check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    # every benchmark prints its figure beside a baseline measured in the same run
    assert "baseline" in result.stdout.lower() or "ratio" in result.stdout.lower(), result.stdout[-2000:]
