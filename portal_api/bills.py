"""The bills a reader sees: the latest version of each issued bill, with paid flag and documents."""

from __future__ import annotations

import json
from typing import Any

from portal_api.errors import NotFound
from portal_api.payments import paid_bills
from portal_api.reading import StoreReader

VISIBLE = {"issued"}  # drafts and held bills are not shown; replaced versions give way


def latest_issued(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["status"] not in VISIBLE:
            continue
        seen = latest.get(row["bill_id"])
        if seen is None or row["version"] > seen["version"]:
            latest[row["bill_id"]] = row
    return sorted(latest.values(), key=lambda r: (r["period"], r["bill_id"]), reverse=True)


def present(reader: StoreReader, rows: list[dict[str, Any]], base: str) -> list[dict[str, Any]]:
    paid = paid_bills(reader, (r["bill_id"] for r in rows))
    out = []
    for row in rows:
        view = dict(row)
        view["lines"] = json.loads(row["lines"]) if isinstance(row["lines"], str) else row["lines"]
        view["paid"] = row["bill_id"] in paid
        link = f"{base}/bills/{row['bill_id']}"
        view["documents"] = {"pdf": f"{link}/pdf", "xml": f"{link}/xml"}
        out.append(view)
    return out


def find(rows: list[dict[str, Any]], customer_code: str, bill_id: str) -> dict[str, Any]:
    for row in latest_issued(rows):
        if row["bill_id"] == bill_id:
            return row
    raise NotFound(
        f"customer {customer_code} has no issued bill {bill_id}",
        hint=f"list the customer's bills at /v1/customers/{customer_code}/bills",
    )
