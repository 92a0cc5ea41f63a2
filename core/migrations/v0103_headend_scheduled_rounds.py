"""The scheduler's ledger of rounds by (job, scheduled time), so a standby that takes over
never repeats a round the dead holder completed and resumes one it left unfinished."""

STATEMENTS = [
    """
    CREATE TABLE headend_scheduled_rounds (
        job_id        TEXT NOT NULL,
        scheduled_at  TIMESTAMP NOT NULL,
        state         TEXT NOT NULL,
        holder        TEXT NOT NULL,
        runs          INTEGER NOT NULL DEFAULT 1,
        started_at    TIMESTAMP NOT NULL,
        ended_at      TIMESTAMP,
        PRIMARY KEY (job_id, scheduled_at)
    )
    """,
    "CREATE INDEX headend_scheduled_rounds_state ON headend_scheduled_rounds (state)",
]
