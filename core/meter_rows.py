"""Fleet rows into the registry's `meters` table: the one writer behind the head-end's
`amr meters import` and ingest's `amr ingest import --fleet`.

A meter new to the registry gets the next integer key (the key ingest partitions and joins
by, never reused); a meter it knows keeps its key and takes the row's values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from core.buckets import bucket_of
from core.fleet import FleetRow

_UPSERT = sa.text(
    "INSERT INTO meters (meter_id, meter_key, customer_code, url, protocol, model, route,"
    " bucket, ct_ratio, vt_ratio, installed_on, removed_on, attributes, updated_at) VALUES"
    " (:meter_id, :meter_key, :customer_code, :url, :protocol, :model, :route, :bucket,"
    " :ct, :vt, :installed_on, :removed_on, :attributes, CURRENT_TIMESTAMP)"
    " ON CONFLICT (meter_id) DO UPDATE SET customer_code = excluded.customer_code,"
    " url = excluded.url, protocol = excluded.protocol, model = excluded.model,"
    " route = excluded.route, bucket = excluded.bucket, ct_ratio = excluded.ct_ratio,"
    " vt_ratio = excluded.vt_ratio, installed_on = excluded.installed_on,"
    " removed_on = excluded.removed_on, attributes = excluded.attributes,"
    " updated_at = CURRENT_TIMESTAMP"
)


def save_meters(conn: sa.Connection, rows: Sequence[FleetRow], *, buckets: int) -> tuple[int, int]:
    """Insert or update `rows` (each meter once) in the caller's transaction; returns how
    many meters were inserted and how many updated."""
    existing = {r[0]: r[1] for r in conn.execute(sa.text("SELECT meter_id, meter_key FROM meters"))}
    next_key = max(existing.values(), default=0) + 1
    params: list[dict[str, Any]] = []
    inserted = 0
    for row in rows:
        key = existing.get(row.meter_id)
        if key is None:
            key, next_key = next_key, next_key + 1
            inserted += 1
        params.append(
            {
                "meter_id": row.meter_id,
                "meter_key": key,
                "customer_code": row.customer_code,
                "url": row.url,
                "protocol": row.meter_url.protocol,
                "model": row.model,
                "route": row.route,
                "bucket": bucket_of(row.meter_id, buckets),
                "ct": row.ct_ratio,
                "vt": row.vt_ratio,
                "installed_on": row.installed_on.isoformat() if row.installed_on else None,
                "removed_on": row.removed_on.isoformat() if row.removed_on else None,
                "attributes": json.dumps(row.attributes(), sort_keys=True),
            }
        )
    if params:
        conn.execute(_UPSERT, params)
    return inserted, len(params) - inserted
