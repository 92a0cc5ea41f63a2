"""DLMS invocation counters: the next counter block not yet handed out, per key."""

STATEMENTS = [
    """
    CREATE TABLE dlms_invocation_counters (
        key_id      TEXT PRIMARY KEY,
        next_free   BIGINT NOT NULL,
        updated_at  TIMESTAMP DEFAULT CURRENT_TIMESTAMP
    )
    """,
]
