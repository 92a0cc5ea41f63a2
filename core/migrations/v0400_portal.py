"""The portal's tables: integrator clients, the bill outbox, and payment notices."""

STATEMENTS = [
    """
    CREATE TABLE portal_clients (
        client_id     TEXT PRIMARY KEY,
        name          TEXT NOT NULL,
        secret_hash   TEXT NOT NULL,
        rate_per_s    INTEGER NOT NULL DEFAULT 50,
        disabled      INTEGER NOT NULL DEFAULT 0,
        created_at    TIMESTAMP DEFAULT CURRENT_TIMESTAMP
    )
    """,
    """
    CREATE TABLE portal_outbox (
        bill_id          TEXT NOT NULL,
        version          INTEGER NOT NULL,
        customer_code    TEXT NOT NULL,
        period           TEXT NOT NULL,
        idempotency_key  TEXT NOT NULL UNIQUE,
        payload          TEXT NOT NULL,
        state            TEXT NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  TIMESTAMP,
        last_error       TEXT,
        acknowledged_at  TIMESTAMP,
        created_at       TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        updated_at       TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        PRIMARY KEY (bill_id, version)
    )
    """,
    "CREATE INDEX portal_outbox_state ON portal_outbox (state, next_attempt_at)",
    "CREATE INDEX portal_outbox_period ON portal_outbox (period)",
    """
    CREATE TABLE portal_payments (
        notice_id      TEXT PRIMARY KEY,
        bill_id        TEXT NOT NULL,
        amount         INTEGER NOT NULL,
        paid_at        TIMESTAMP NOT NULL,
        client_id      TEXT NOT NULL,
        received_at    TIMESTAMP DEFAULT CURRENT_TIMESTAMP
    )
    """,
    "CREATE UNIQUE INDEX portal_payments_bill ON portal_payments (bill_id)",
]
