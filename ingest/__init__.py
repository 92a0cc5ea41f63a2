"""Ingest: landed readings -> validation, estimation, aggregation (VEE) -> measurement store."""
