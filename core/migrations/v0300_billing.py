"""Billing: customers, contracts with effective dates, meters on each usage point over
time, bill holds, and e-invoice numbering (gap-free per template and series)."""

STATEMENTS = [
    """
    CREATE TABLE customers (
        customer_code TEXT PRIMARY KEY,
        name          TEXT NOT NULL DEFAULT '',
        address       TEXT NOT NULL DEFAULT '',
        tax_code      TEXT,
        updated_at    TIMESTAMP DEFAULT CURRENT_TIMESTAMP
    )
    """,
    """
    CREATE TABLE contracts (
        customer_code  TEXT NOT NULL REFERENCES customers (customer_code),
        effective_from DATE NOT NULL,
        effective_to   DATE,
        tariff_class   TEXT NOT NULL,
        voltage        TEXT,
        households     TEXT NOT NULL DEFAULT '1',
        reading_day    INTEGER NOT NULL DEFAULT 0,
        tou_calendar   TEXT NOT NULL DEFAULT '16/2014/TT-BCT',
        rate_map       TEXT NOT NULL DEFAULT '1=normal,2=peak,3=offpeak',
        route          TEXT,
        PRIMARY KEY (customer_code, effective_from)
    )
    """,
    "CREATE INDEX contracts_route ON contracts (route)",
    """
    CREATE TABLE usage_point_meters (
        customer_code TEXT NOT NULL REFERENCES customers (customer_code),
        meter_id      TEXT NOT NULL,
        installed_on  DATE NOT NULL,
        removed_on    DATE,
        PRIMARY KEY (customer_code, meter_id, installed_on)
    )
    """,
    "CREATE INDEX usage_point_meters_meter ON usage_point_meters (meter_id)",
    """
    CREATE TABLE bill_holds (
        bill_id       TEXT NOT NULL,
        version       INTEGER NOT NULL,
        customer_code TEXT NOT NULL,
        period        TEXT NOT NULL,
        reasons       TEXT NOT NULL,
        status        TEXT NOT NULL DEFAULT 'open',
        total_amount  BIGINT,
        adjusted_kwh  INTEGER,
        resolution    TEXT,
        resolved_by   TEXT,
        created_at    TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        resolved_at   TIMESTAMP,
        PRIMARY KEY (bill_id, version)
    )
    """,
    "CREATE INDEX bill_holds_period ON bill_holds (period, status)",
    """
    CREATE TABLE invoice_counters (
        template    TEXT NOT NULL,
        series      TEXT NOT NULL,
        last_number INTEGER NOT NULL,
        PRIMARY KEY (template, series)
    )
    """,
    """
    CREATE TABLE invoices (
        bill_id        TEXT NOT NULL,
        version        INTEGER NOT NULL,
        period         TEXT NOT NULL,
        template       TEXT NOT NULL,
        series         TEXT NOT NULL,
        number         INTEGER NOT NULL,
        invoice_date   DATE NOT NULL,
        kind           TEXT NOT NULL DEFAULT 'original',
        refers_to      TEXT,
        total_amount   BIGINT NOT NULL,
        issued_at      TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        PRIMARY KEY (bill_id, version),
        UNIQUE (template, series, number)
    )
    """,
    "CREATE INDEX invoices_period ON invoices (period)",
]
