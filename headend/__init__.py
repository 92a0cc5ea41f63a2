"""The head-end: registry, keys, polling, catch-up, communication log, schedules."""
