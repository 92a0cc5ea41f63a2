"""A module `Executor.prepare` imports in each worker as it starts: it notes the worker's
pid and environment in a folder the test names, then the test checks every worker did."""

from __future__ import annotations

import json
import os
from pathlib import Path

_folder = os.environ.get("AMR_TEST_PRELOAD_DIR")
if _folder:
    (Path(_folder) / f"{os.getpid()}.json").write_text(
        json.dumps({"polars_threads": os.environ.get("POLARS_MAX_THREADS")})
    )
