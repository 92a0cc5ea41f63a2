"""Head-end daemon events: misfires, overruns, lock changes, stops, child processes."""

STATEMENTS = [
    """
    CREATE TABLE headend_daemon_events (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        at      TIMESTAMP NOT NULL,
        kind    TEXT NOT NULL,
        job_id  TEXT,
        detail  TEXT
    )
    """,
]
