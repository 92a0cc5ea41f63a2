"""Versioned migrations of the operational store.

One module per step, `vNNNN_what.py`, each with a `STATEMENTS` list of SQL that runs on
both SQLite and PostgreSQL. Never edit a released step; add the next one. Version blocks:
0001-0099 core, 0100-0199 headend, 0200-0299 ingest, 0300-0399 billing, 0400-0499 portal.
"""
