"""The head-end's errors: one base, subclasses for the cases callers tell apart."""

from __future__ import annotations

from core.errors import AmrError


class HeadendError(AmrError):
    """Anything the head-end refuses or cannot do."""


class MeterNotFound(HeadendError):
    """A meter id that is not in the registry."""


class FleetFileError(HeadendError):
    """A fleet file that cannot be read at all (as opposed to bad rows in it)."""


class KeyStoreError(HeadendError):
    """A key store that is missing, too open, malformed, or lacks a key."""


class SchedulerLocked(HeadendError):
    """Another scheduler holds the installation's lock."""


class UnsupportedMeter(HeadendError):
    """A meter whose protocol has no session adapter in this build."""
