"""Bill documents (PDF and e-invoice XML) that billing renders into the data directory.

Contract with billing: `<data>/documents/<period>/<bill_id>-v<version>.pdf` and `.xml`.
The portal only serves these files; it never renders them.
"""

from __future__ import annotations

import re
from pathlib import Path

from portal_api.errors import NotFound

KINDS = {"pdf": "application/pdf", "xml": "application/xml"}
_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def document_path(data_dir: Path, period: str, bill_id: str, version: int, kind: str) -> Path:
    if kind not in KINDS or not _SAFE.match(bill_id) or not re.fullmatch(r"\d{4}-\d{2}", period):
        raise NotFound(f"no {kind} document for bill {bill_id!r}")
    path = data_dir / "documents" / period / f"{bill_id}-v{version}.{kind}"
    if not path.is_file():
        raise NotFound(
            f"the {kind.upper()} of bill {bill_id} version {version} ({period}) has not been rendered",
            hint="billing renders documents after the bill run; ask again once it has",
        )
    return path
