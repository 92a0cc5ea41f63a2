"""Review decisions on whole meter-days: the day findings (sum check, zero runs, high or low
usage, gaps) are accepted, rejected or edited like readings, and ingest applies them when it
recomputes the day. Every decision is also written to `ingest_audit`.
"""

STATEMENTS = [
    """
    CREATE TABLE ingest_day_decisions (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        meter_id    TEXT NOT NULL,
        local_date  DATE NOT NULL,
        rule        TEXT NOT NULL,
        action      TEXT NOT NULL,
        energy_mwh  INTEGER,
        reason      TEXT NOT NULL,
        decided_by  TEXT NOT NULL,
        decided_at  TIMESTAMP DEFAULT CURRENT_TIMESTAMP
    )
    """,
    "CREATE INDEX ingest_day_decisions_day ON ingest_day_decisions (local_date, meter_id)",
]
