"""The billing room's errors: one base, a few kinds the CLI and callers tell apart."""

from __future__ import annotations

from core.errors import AmrError


class BillingError(AmrError):
    """A billing input or request that cannot be honoured."""


class TariffError(BillingError):
    """Tariff data that is missing, malformed or not in force for the dates asked."""


class CustomerImportError(BillingError):
    """A customer file that cannot be imported (the report lists every bad row)."""


class InvoiceError(BillingError):
    """An invoice that cannot be numbered, built, validated or signed."""


class UnknownCustomerError(BillingError):
    """A customer code that is not in the operational store."""
