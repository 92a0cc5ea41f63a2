"""Head-end tables: watermarks, rounds and their pending landings, the communication log,
meter health (circuit breaker), clock corrections, and the scheduler lock."""

STATEMENTS = [
    # The last stored interval per meter and profile; rounds read from here on.
    """
    CREATE TABLE headend_watermarks (
        meter_id    TEXT NOT NULL,
        profile     TEXT NOT NULL,
        last_ts     TIMESTAMP NOT NULL,
        updated_at  TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        PRIMARY KEY (meter_id, profile)
    )
    """,
    # One landing unit of a round: the watermarks it will set are written here first,
    # then the batch lands, then they are applied; a restart rolls forward or back.
    """
    CREATE TABLE headend_landings (
        landing_id  TEXT PRIMARY KEY,
        round_id    TEXT NOT NULL,
        state       TEXT NOT NULL,
        watermarks  TEXT NOT NULL,
        batch_path  TEXT,
        rows_landed INTEGER NOT NULL DEFAULT 0,
        created_at  TIMESTAMP NOT NULL
    )
    """,
    "CREATE INDEX headend_landings_state ON headend_landings (state)",
    """
    CREATE TABLE headend_rounds (
        round_id    TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        started_at  TIMESTAMP NOT NULL,
        ended_at    TIMESTAMP,
        meters      INTEGER NOT NULL DEFAULT 0,
        ok          INTEGER NOT NULL DEFAULT 0,
        failed      INTEGER NOT NULL DEFAULT 0,
        skipped     INTEGER NOT NULL DEFAULT 0,
        readings    INTEGER NOT NULL DEFAULT 0,
        outcome     TEXT
    )
    """,
    # One row per attempt (a retry is a new attempt with retries counting up).
    """
    CREATE TABLE headend_comm_log (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        round_id    TEXT NOT NULL,
        meter_id    TEXT NOT NULL,
        protocol    TEXT NOT NULL,
        route       TEXT,
        started_at  TIMESTAMP NOT NULL,
        ended_at    TIMESTAMP NOT NULL,
        outcome     TEXT NOT NULL,
        error_class TEXT,
        error       TEXT,
        retries     INTEGER NOT NULL DEFAULT 0,
        bytes       INTEGER NOT NULL DEFAULT 0,
        readings    INTEGER NOT NULL DEFAULT 0
    )
    """,
    "CREATE INDEX headend_comm_log_meter ON headend_comm_log (meter_id, started_at)",
    "CREATE INDEX headend_comm_log_started ON headend_comm_log (started_at)",
    """
    CREATE TABLE headend_meter_health (
        meter_id             TEXT PRIMARY KEY,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        open_until           TIMESTAMP,
        last_error_class     TEXT,
        last_error           TEXT,
        last_ok_at           TIMESTAMP,
        updated_at           TIMESTAMP
    )
    """,
    """
    CREATE TABLE headend_clock_events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        meter_id    TEXT NOT NULL,
        at          TIMESTAMP NOT NULL,
        local_day   DATE NOT NULL,
        drift_s     REAL NOT NULL,
        action      TEXT NOT NULL
    )
    """,
    "CREATE INDEX headend_clock_events_meter ON headend_clock_events (meter_id, local_day)",
    """
    CREATE TABLE headend_scheduler_lock (
        name        TEXT PRIMARY KEY,
        holder      TEXT NOT NULL,
        expires_at  TIMESTAMP NOT NULL
    )
    """,
]
