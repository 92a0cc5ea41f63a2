"""Which process owns a pending landing unit, so a recovery never takes a live writer's unit."""

STATEMENTS = [
    "ALTER TABLE headend_landings ADD COLUMN owner TEXT",
]
