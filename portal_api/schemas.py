"""The API's bodies, declared once for validation and for the OpenAPI description."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CUSTOMER_CODE_PATTERN = r"^PD\d{11}$"  # PD + 2-digit unit + 9 digits (core.fleet.CUSTOMER_CODE)
PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
BILL_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
NOTICE_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. invalid_request, forbidden")
    message: str = Field(description="what is wrong, naming the input")
    hint: str | None = Field(default=None, description="how to fix it")
    details: list[dict[str, object]] | None = None


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int


class TouSplit(BaseModel):
    offpeak_wh: int
    normal_wh: int
    peak_wh: int


class ConsumptionPoint(BaseModel):
    date: dt.date | None = Field(default=None, description="the local day (granularity=day)")
    period: str | None = Field(default=None, description="YYYY-MM (granularity=month)")
    ts: dt.datetime | None = Field(
        default=None, description="the interval's end, local time with its offset (granularity=interval)"
    )
    period_minutes: int | None = Field(
        default=None, description="the interval's length in minutes (granularity=interval)"
    )
    band: Literal["offpeak", "normal", "peak"] | None = Field(
        default=None,
        description="the interval's TOU band by the calendar in force at its start (granularity=interval); "
        "null when the customer's meters disagree",
    )
    energy_wh: int
    estimated_wh: int
    meters: int
    tou: TouSplit | None = Field(description="null when any part was known only from register reads")


class ConsumptionTotal(BaseModel):
    energy_wh: int
    estimated_wh: int
    tou: TouSplit | None


class Consumption(BaseModel):
    customer_code: str
    meters: list[str]
    granularity: Literal["interval", "day", "month"]
    from_: dt.date = Field(alias="from")
    to: dt.date
    unit: Literal["Wh"]
    points: list[ConsumptionPoint]
    total: ConsumptionTotal


class BillLine(BaseModel):
    model_config = ConfigDict(extra="allow")


class DocumentLinks(BaseModel):
    pdf: str
    xml: str


class Bill(BaseModel):
    bill_id: str
    version: int
    customer_code: str
    period: str
    period_start: dt.date
    period_end: dt.date
    tariff_class: str
    kwh: int
    amount_before_vat: int = Field(description="whole VND")
    vat_rate: str = Field(description="decimal string, e.g. 0.08")
    vat_amount: int
    total_amount: int
    lines: list[BillLine]
    estimated: bool
    status: str
    invoice_no: str | None
    created_at: str
    paid: bool
    documents: DocumentLinks


class BillList(BaseModel):
    customer_code: str
    bills: list[Bill]


class PaymentNotice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notice_id: str = Field(pattern=NOTICE_ID_PATTERN, description="the portal's id of this payment")
    customer_code: str = Field(pattern=CUSTOMER_CODE_PATTERN)
    bill_id: str = Field(pattern=BILL_ID_PATTERN)
    amount: int = Field(ge=1, le=10**13, description="whole VND; must equal the bill's total")
    paid_at: dt.datetime


class PaymentReceipt(BaseModel):
    notice_id: str
    bill_id: str
    status: Literal["paid"]
    duplicate: bool


class Me(BaseModel):
    customer_code: str
    expires_at: int


class Health(BaseModel):
    status: Literal["ok", "starting"]
    snapshots: dict[str, int]
