"""The root of every error the product raises on purpose.

Each room subclasses `AmrError` once; only the CLI and the HTTP API turn errors into
messages, and they print `str(error)` followed by the `hint` saying how to fix it.
"""

from __future__ import annotations


class AmrError(Exception):
    """An expected failure with a message for people and a hint on how to fix it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(AmrError):
    """Configuration that cannot be used."""


class ContractError(AmrError):
    """Data that does not match a declared contract (schema, URL, OBIS code)."""


class StoreError(AmrError):
    """A store that is missing, corrupt or locked beyond its timeout."""
