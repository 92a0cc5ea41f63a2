"""Bill documents (PDF and e-invoice XML) that billing renders into the data directory.

Contract with billing: `<data>/documents/<period>/<bill_id>-v<version>.pdf` and `.xml`, or,
for e-invoices issued in archive mode, a row of the period's archive (`core.invoices`).
The portal only serves these; it never renders them.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.invoices import archived_versions
from portal_api.errors import NotFound

KINDS = {"pdf": "application/pdf", "xml": "application/xml"}
_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def document(data_dir: Path, period: str, bill_id: str, version: int, kind: str) -> Path | bytes:
    """The rendered file, or for an e-invoice kept in the period's archive, its exact bytes."""
    path = _candidate(data_dir, period, bill_id, version, kind)
    if path.is_file():
        return path
    if kind == "xml":
        found = archived_versions(data_dir, period, bill_id, version)
        if found.height:
            xml: bytes = found["xml"][-1]
            return xml
    raise _not_rendered(kind, bill_id, version, period)


def _candidate(data_dir: Path, period: str, bill_id: str, version: int, kind: str) -> Path:
    if kind not in KINDS or not _SAFE.match(bill_id) or not re.fullmatch(r"\d{4}-\d{2}", period):
        raise NotFound(f"no {kind} document for bill {bill_id!r}")
    return data_dir / "documents" / period / f"{bill_id}-v{version}.{kind}"


def _not_rendered(kind: str, bill_id: str, version: int, period: str) -> NotFound:
    return NotFound(
        f"the {kind.upper()} of bill {bill_id} version {version} ({period}) has not been rendered",
        hint="billing renders documents after the bill run; ask again once it has",
    )
