"""A change counter of the meter registry, kept by triggers on `meters`: a copy of the
registry made at one count (ingest's registry snapshot) is known to be current while the
count is unchanged, whoever changed the table and however. `token` tells one registry's
counter from another's (a data directory pointed at another database).

Statements given per dialect where SQLite's and PostgreSQL's trigger syntax differ."""

STATEMENTS = [
    """
    CREATE TABLE registry_version (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        version  BIGINT NOT NULL,
        token    TEXT NOT NULL
    )
    """,
    {
        "sqlite": "INSERT INTO registry_version (id, version, token) "
        "VALUES (1, 1, lower(hex(randomblob(16))))",
        "postgresql": "INSERT INTO registry_version (id, version, token) VALUES (1, 1, md5(random()::text))",
    },
    {
        "sqlite": "CREATE TRIGGER meters_inserted_counted AFTER INSERT ON meters "
        "BEGIN UPDATE registry_version SET version = version + 1; END",
    },
    {
        "sqlite": "CREATE TRIGGER meters_updated_counted AFTER UPDATE ON meters "
        "BEGIN UPDATE registry_version SET version = version + 1; END",
    },
    {
        "sqlite": "CREATE TRIGGER meters_deleted_counted AFTER DELETE ON meters "
        "BEGIN UPDATE registry_version SET version = version + 1; END",
    },
    {
        "postgresql": "CREATE FUNCTION registry_changed() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN UPDATE registry_version SET version = version + 1; RETURN NULL; END $$",
    },
    {
        # once per statement: a fleet import of a million rows bumps the counter once
        "postgresql": "CREATE TRIGGER meters_counted AFTER INSERT OR UPDATE OR DELETE ON meters "
        "FOR EACH STATEMENT EXECUTE FUNCTION registry_changed()",
    },
]
