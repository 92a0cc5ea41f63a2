"""Ingest's own operational tables: the ingest log, review decisions and the audit trail.

The measurements themselves live in the Parquet store; these tables are small and are
written in short transactions by many processes (ingest runs, staff reviewing).
"""

STATEMENTS = [
    """
    CREATE TABLE ingest_log (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id      TEXT NOT NULL,
        batch_path  TEXT NOT NULL,
        sha256      TEXT NOT NULL,
        rows_in     INTEGER NOT NULL,
        stored      INTEGER NOT NULL,
        duplicates  INTEGER NOT NULL,
        quarantined INTEGER NOT NULL,
        reasons     TEXT NOT NULL DEFAULT '{}',
        estimates   INTEGER NOT NULL DEFAULT 0,
        logged_at   TIMESTAMP DEFAULT CURRENT_TIMESTAMP
    )
    """,
    "CREATE INDEX ingest_log_run ON ingest_log (run_id)",
    """
    CREATE TABLE ingest_decisions (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        meter_id    TEXT NOT NULL,
        quantity    TEXT NOT NULL,
        ts          TEXT NOT NULL,
        local_date  DATE NOT NULL,
        action      TEXT NOT NULL,
        value       INTEGER NOT NULL,
        scale       INTEGER NOT NULL,
        new_value   INTEGER,
        reason      TEXT NOT NULL,
        decided_by  TEXT NOT NULL,
        decided_at  TIMESTAMP DEFAULT CURRENT_TIMESTAMP
    )
    """,
    "CREATE INDEX ingest_decisions_day ON ingest_decisions (local_date)",
    """
    CREATE TABLE ingest_audit (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        meter_id    TEXT NOT NULL,
        quantity    TEXT NOT NULL,
        ts          TEXT NOT NULL,
        rule        TEXT NOT NULL,
        before_text TEXT NOT NULL,
        after_text  TEXT NOT NULL,
        actor       TEXT NOT NULL,
        at          TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        UNIQUE (meter_id, quantity, ts, rule, before_text, after_text)
    )
    """,
    "CREATE INDEX ingest_audit_meter ON ingest_audit (meter_id, ts)",
]
