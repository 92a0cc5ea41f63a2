"""The meter registry and the landing files ingest has taken."""

STATEMENTS = [
    """
    CREATE TABLE meters (
        meter_id      TEXT PRIMARY KEY,
        meter_key     INTEGER NOT NULL UNIQUE,
        customer_code TEXT,
        url           TEXT NOT NULL,
        protocol      TEXT NOT NULL,
        model         TEXT,
        route         TEXT,
        bucket        INTEGER NOT NULL,
        ct_ratio      INTEGER NOT NULL DEFAULT 1,
        vt_ratio      INTEGER NOT NULL DEFAULT 1,
        installed_on  DATE,
        removed_on    DATE,
        attributes    TEXT NOT NULL DEFAULT '{}',
        updated_at    TIMESTAMP DEFAULT CURRENT_TIMESTAMP
    )
    """,
    "CREATE INDEX meters_route ON meters (route)",
    "CREATE INDEX meters_customer ON meters (customer_code)",
    """
    CREATE TABLE landing_taken (
        batch_path  TEXT PRIMARY KEY,
        sha256      TEXT NOT NULL,
        rows_in     INTEGER NOT NULL,
        taken_at    TIMESTAMP DEFAULT CURRENT_TIMESTAMP
    )
    """,
]
