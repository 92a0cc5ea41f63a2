"""The allocator setting reaches Polars in a fresh process started the way `amr` starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.allocator import ALLOCATOR_ENV, BATCH_ALLOCATOR_CONF, POLARS_DEFAULT_CONF, configure_allocator

REPO = Path(__file__).resolve().parents[2]
SHOW = "import amr, polars, os; print(os.environ.get('_RJEM_MALLOC_CONF', ''))"


def _fresh(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != ALLOCATOR_ENV}
    if env_value is not None:
        env[ALLOCATOR_ENV] = env_value
    done = subprocess.run(
        [sys.executable, "-c", SHOW], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert "<jemalloc>" not in done.stderr  # jemalloc warns of a setting it does not take
    return done.stdout.strip()


def test_the_command_line_sets_it_before_polars_loads() -> None:
    # Polars puts its default first and a setting found in the environment after it: the
    # last of each option wins in jemalloc
    assert _fresh(None).endswith(BATCH_ALLOCATOR_CONF)


def test_polars_default_inherited_from_a_parent_is_replaced() -> None:
    assert _fresh(POLARS_DEFAULT_CONF).endswith(BATCH_ALLOCATOR_CONF)


def test_an_operators_setting_is_kept() -> None:
    shown = _fresh("dirty_decay_ms:0")
    assert shown.endswith("dirty_decay_ms:0")
    assert BATCH_ALLOCATOR_CONF not in shown


def test_too_late_once_polars_is_loaded() -> None:
    import polars  # noqa: F401  (loaded in this test process in any case)

    before = os.environ.get(ALLOCATOR_ENV)
    assert configure_allocator() is False
    assert os.environ.get(ALLOCATOR_ENV) == before


def test_local_worker_processes_inherit_it() -> None:
    # the process pool's workers are spawned fresh: the setting reaches them through the environment
    show = (
        "import amr, os\n"
        "from core.executor import LocalExecutor\n"
        "with LocalExecutor(2) as pool:\n"
        "    print('\\n'.join(pool.map(os.getenv, ['_RJEM_MALLOC_CONF'] * 2)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != ALLOCATOR_ENV}
    done = subprocess.run(
        [sys.executable, "-c", show], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    seen = done.stdout.split()
    assert len(seen) == 2
    assert all(value.endswith(BATCH_ALLOCATOR_CONF) for value in seen)
