"""Polars' memory allocator (jemalloc) set for batch work, before Polars is first imported.

Polars returns freed memory to the system after half a second (its default for notebooks);
an ingest task frees and allocates partition-sized frames in quick succession, so the
system hands the same memory back again page by page, and zeroing it cost a quarter of the
run's CPU (ingest benchmark, 100,000 meters: 4.5 M page faults, 19-21 of 67-72 CPU-s in the
kernel). Keeping freed memory for ten seconds (jemalloc's own default) makes it reusable
between steps and partitions and still gives it back when a process idles.

jemalloc reads its settings once, when Polars' library loads, so this must run in the
process's entry point before anything imports Polars; worker processes inherit it through
the environment. A setting the operator made (`_RJEM_MALLOC_CONF`) is left alone; Polars'
own default, which a parent process that loaded Polars passes on, is not a choice.
"""

from __future__ import annotations

import os
import sys

ALLOCATOR_ENV = "_RJEM_MALLOC_CONF"
# Fewer arenas than jemalloc's default four per CPU: memory one Polars thread frees is then
# reused by another instead of held in its own arena until the decay. Measured with the
# ingest benchmark on this 2-core machine (100,000 meters, 2 workers): one arena took the
# run's resident memory from 3.74-3.80 to 3.36-3.38 GB at the same CPU. One arena per four
# CPUs keeps large machines' threads from queueing on one arena's lock (unmeasured there).
NARENAS = max(1, (os.cpu_count() or 1) // 4)
BATCH_ALLOCATOR_CONF = f"dirty_decay_ms:10000,muzzy_decay_ms:10000,narenas:{NARENAS}"
# what Polars (2.x) writes into the environment when it loads without a setting
POLARS_DEFAULT_CONF = "dirty_decay_ms:500,muzzy_decay_ms:1000"


def configure_allocator() -> bool:
    """Keep freed memory for reuse for ten seconds; False when Polars is already loaded (too
    late to matter) or the operator chose a setting."""
    if "polars" in sys.modules or os.environ.get(ALLOCATOR_ENV, POLARS_DEFAULT_CONF) != POLARS_DEFAULT_CONF:
        return False
    os.environ[ALLOCATOR_ENV] = BATCH_ALLOCATOR_CONF
    return True
