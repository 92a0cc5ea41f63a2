"""Billing: tariffs, determinants, rating, bill runs, holds, invoices and documents."""
