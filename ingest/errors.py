"""Ingest's exception base and its specific failures."""

from __future__ import annotations

from core.errors import AmrError


class IngestError(AmrError):
    """An ingest run, import or review that cannot go on."""


class ImportRefused(IngestError):
    """A file of readings that does not match the Reading schema; nothing of it is stored."""


class ReviewError(IngestError):
    """A review decision that names no reading in the queue or is malformed."""
