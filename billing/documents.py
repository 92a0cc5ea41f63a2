"""Bill documents for customers and the portal: Vietnamese HTML (tier breakdown and a
consumption chart), PDF on demand, and the signed e-invoice XML.

Contract with the portal (which cannot import billing): documents are files at
`<data_dir>/documents/<period>/<bill_id>-v<version>.html|.pdf|.xml`, written by
`write_documents` (called by `amr bill issue` and `amr bill documents`).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import time
from dataclasses import dataclass
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from lxml import etree

from billing import invoice_archive, sources
from billing.einvoice import BAND_NAMES, Seller, amount_in_words, load_seller, validate
from billing.errors import BillingError
from billing.invoice_writer import InvoiceWriter
from billing.issue import invoices
from core.measurements import MeasurementStore
from core.state import StateStore

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))


@dataclass
class DocumentsReport:
    period: str
    documents: int = 0
    signed: bool = False
    pdf: bool = False
    seconds: float = 0.0
    directory: Path | None = None


def vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".")


def _vndate(value: dt.date) -> str:
    return value.strftime("%d/%m/%Y")


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("billing", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
    )
    env.filters["vnd"] = vnd
    env.filters["vndate"] = _vndate
    return env


def display_lines(bill: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for line in json.loads(bill["lines"]):
        tier = line["tier"]
        out.append(
            {
                "name": f"Bậc {tier}" if isinstance(tier, int) else BAND_NAMES.get(tier, tier).capitalize(),
                "quota": "–" if line["quota_kwh"] is None else line["quota_kwh"],
                "kwh": line["kwh"],
                "price": line["price"],
                "amount": line["amount"],
            }
        )
    return out


def chart_svg(history: list[tuple[str, int]], width: int = 560, height: int = 160) -> str:
    """Bars of kWh per period (oldest first), the last one highlighted."""
    if not history:
        return "<p>Chưa có dữ liệu.</p>"
    top = max(max(k for _, k in history), 1)
    bar = width // max(len(history), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 30}" role="img" '
        f'aria-label="kWh theo kỳ">'
    ]
    for i, (period, kwh) in enumerate(history):
        h = int(kwh * height / top)
        colour = "#d35400" if i == len(history) - 1 else "#2e86c1"
        x = i * bar + 4
        parts.append(
            f'<rect x="{x}" y="{height - h}" width="{bar - 8}" height="{h}" fill="{colour}"/>'
            f'<text x="{x}" y="{height + 12}" font-size="9">{escape(period[2:])}</text>'
            f'<text x="{x}" y="{max(height - h - 2, 9)}" font-size="9">{kwh}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(
    bill: dict[str, Any],
    invoice: dict[str, Any],
    seller: Seller,
    buyer: dict[str, Any],
    history: list[tuple[str, int]],
) -> str:
    start, end = bill["period_start"], bill["period_end"]
    from billing.periods import is_regular

    return (
        _environment()
        .get_template("bill.html.j2")
        .render(
            bill=bill,
            invoice=invoice,
            seller=seller,
            buyer=buyer,
            lines=display_lines(bill),
            days=(end - start).days,
            regular=is_regular(start, end),
            vat_percent=f"{(Decimal(bill['vat_rate']) * 100).normalize():f}",
            words=amount_in_words(bill["total_amount"]),
            chart=chart_svg(history),
        )
    )


def _font() -> Path:
    for directory in FONT_DIRS:
        if (directory / "DejaVuSans.ttf").is_file():
            return directory
    raise BillingError(
        "PDF bills need the DejaVu Sans font (Vietnamese glyphs), which is not installed",
        hint="apt-get install fonts-dejavu-core, or use the HTML bill",
    )


def render_pdf(
    bill: dict[str, Any],
    invoice: dict[str, Any],
    seller: Seller,
    buyer: dict[str, Any],
    history: list[tuple[str, int]],
) -> bytes:
    from fpdf import FPDF

    fonts = _font()
    pdf = FPDF(format="A4")
    pdf.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 14)
    pdf.cell(0, 8, "HÓA ĐƠN GIÁ TRỊ GIA TĂNG (TIỀN ĐIỆN)", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    head = (
        f"Kỳ {bill['period']}: {_vndate(bill['period_start'])} – {_vndate(bill['period_end'])} · "
        f"Mẫu số {invoice['template']} · Ký hiệu {invoice['series']} · Số {invoice['number']:08d} · "
        f"Ngày lập {_vndate(invoice['invoice_date'])}"
    )
    for text in (
        head,
        f"Bên bán: {seller.name} – MST {seller.tax_code}",
        f"Khách hàng: {buyer.get('name') or bill['customer_code']} – Mã KH {bill['customer_code']} – "
        f"{buyer.get('address') or ''}",
    ):
        pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    widths = (50, 30, 30, 35, 40)
    pdf.set_font("DejaVu", "B", 9)
    for w, title in zip(widths, ("Bậc / khung giờ", "Định mức", "kWh", "Đơn giá", "Thành tiền"), strict=True):
        pdf.cell(w, 6, title, border=1)
    pdf.ln()
    pdf.set_font("DejaVu", "", 9)
    for line in display_lines(bill):
        cells = (line["name"], str(line["quota"]), str(line["kwh"]), vnd(line["price"]), vnd(line["amount"]))
        for w, text in zip(widths, cells, strict=True):
            pdf.cell(w, 6, text, border=1, align="L" if text == cells[0] else "R")
        pdf.ln()
    vat = f"{(Decimal(bill['vat_rate']) * 100).normalize():f}"
    for label, amount in (
        ("Cộng", bill["amount_before_vat"]),
        (f"Thuế GTGT {vat}%", bill["vat_amount"]),
        ("Tổng cộng", bill["total_amount"]),
    ):
        pdf.cell(sum(widths[:4]), 6, label, border=1)
        pdf.cell(widths[4], 6, vnd(amount), border=1, align="R")
        pdf.ln()
    pdf.multi_cell(0, 6, f"Bằng chữ: {amount_in_words(bill['total_amount'])}.", new_x="LMARGIN", new_y="NEXT")
    if history:  # the consumption chart, drawn as bars
        pdf.ln(4)
        top = max(max(k for _, k in history), 1)
        x0, y0, chart_h = pdf.l_margin, pdf.get_y() + 40, 36.0
        for i, (period, kwh) in enumerate(history):
            h = kwh * chart_h / top
            pdf.set_fill_color(211, 84, 0) if i == len(history) - 1 else pdf.set_fill_color(46, 134, 193)
            pdf.rect(x0 + i * 14, y0 - h, 10, h, style="F")
            pdf.set_xy(x0 + i * 14, y0 + 1)
            pdf.set_font("DejaVu", "", 6)
            pdf.cell(12, 3, period[2:])
    return bytes(pdf.output())


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".tmp-{path.name}")
    temporary.write_bytes(data)
    os.replace(temporary, path)


@dataclass(frozen=True)
class _Job:
    """One worker's share of a period's documents (picklable)."""

    directory: Path
    period: str
    seller: Seller
    pdf: bool
    items: list[
        tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None, dict[str, Any], list[tuple[str, int]]]
    ]
    archive: bool = False


def _render(job: _Job) -> int:
    writer = InvoiceWriter(job.seller)  # parses the key once per job
    parts: dict[int, list[tuple[str, int, str, bytes]]] = {}
    for n, (bill, invoice, previous, buyer, past) in enumerate(job.items):
        xml = writer.document(bill, invoice, buyer, previous)
        if n == 0 or invoice["kind"] != "original":
            # a sample (and every correction) against the XSD; the writer's tests cover the rest
            validate(etree.fromstring(xml))
        if job.archive:
            number = f"{invoice['template']}-{invoice['series']}-{invoice['number']:08d}"
            row = (bill["bill_id"], bill["version"], number, xml)
            parts.setdefault(invoice_archive.part_of(bill["bill_id"]), []).append(row)
            continue
        stem = job.directory / f"{bill['bill_id']}-v{bill['version']}"
        _write(stem.with_suffix(".html"), render_html(bill, invoice, job.seller, buyer, past).encode("utf-8"))
        _write(stem.with_suffix(".xml"), xml)
        if job.pdf:
            _write(stem.with_suffix(".pdf"), render_pdf(bill, invoice, job.seller, buyer, past))
    for part, rows in parts.items():
        invoice_archive.write_part(job.directory / invoice_archive.FOLDER, part, rows)
    return len(job.items)


def write_documents(
    data_dir: Path,
    state: StateStore,
    *,
    period: str,
    pdf: bool = False,
    bill_ids: list[str] | None = None,
    seller: Seller | None = None,
    workers: int = 1,
    archive: bool = False,
) -> DocumentsReport:
    """HTML and e-invoice XML (signed when the seller has a key) of every issued bill version of the
    period; PDF too when asked; on `workers` processes. Rewrites are harmless: the content
    depends only on stored data.

    With `archive`, only the e-invoice XML is written, into one archive per partition
    (`billing.invoice_archive`: a city's invoices without millions of files); HTML and PDF
    are then rendered on demand for the bills asked for."""
    started = time.perf_counter()
    seller = seller or load_seller(data_dir)
    store = MeasurementStore(data_dir)
    issued = invoices(state, period)
    if bill_ids is not None:
        issued = issued.filter(pl.col("bill_id").is_in(bill_ids))
    directory = data_dir / "documents" / period
    report = DocumentsReport(period=period, signed=seller.can_sign, pdf=pdf, directory=directory)
    if issued.height == 0:
        return report
    all_bills = sources.bills(store, [period]).collect()
    bills = all_bills.join(issued, on=["bill_id", "version"], how="inner")
    # the version before a correction, and its invoice date, beside each bill
    previous_rows = all_bills.join(
        issued.select("bill_id", "version", "invoice_date"), on=["bill_id", "version"], how="left"
    ).with_columns((pl.col("version") + 1).alias("next_version"))
    previous_by_key = {
        (r["bill_id"], r["next_version"]): r
        for r in previous_rows.filter(
            pl.col("bill_id").is_in(bills.filter(pl.col("version") > 1)["bill_id"].implode())
        ).to_dicts()
    }
    history = _history(store, period)
    buyers = _buyers(state)
    directory.mkdir(parents=True, exist_ok=True)
    items = []
    for bill in bills.to_dicts():  # one document per bill: rendering is inherently per customer
        invoice = {k: bill[k] for k in ("template", "series", "number", "invoice_date", "kind", "refers_to")}
        previous = previous_by_key.get((bill["bill_id"], bill["version"]))
        if previous is not None:
            invoice["refers_date"] = previous["invoice_date"]
        past = [*history.get(bill["customer_code"], []), (period, bill["kwh"])]
        items.append((bill, invoice, previous, buyers.get(bill["customer_code"], {}), past))
    if archive:  # a partition belongs to one job: jobs never write the same archive file
        shares = [
            [item for item in items if invoice_archive.part_of(item[0]["bill_id"]) % max(workers, 1) == i]
            for i in range(max(workers, 1))
        ]
        report.directory = invoice_archive.folder(data_dir, period)
    else:
        shares = [items[i :: max(workers, 1)] for i in range(max(workers, 1))]
    jobs = [_Job(directory, period, seller, pdf and not archive, share, archive) for share in shares if share]
    if workers <= 1 or len(items) < 200:
        report.documents = sum(_render(job) for job in jobs)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: a child forked while Polars' threads run can hang (seen in the benchmark)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            report.documents = sum(pool.map(_render, jobs))
    report.seconds = time.perf_counter() - started
    return report


def _history(store: MeasurementStore, period: str) -> dict[str, list[tuple[str, int]]]:
    earlier = sources.previous_periods(period, 11)
    frame = (
        sources.latest(sources.bills(store, earlier))
        .filter(pl.col("status") != "replaced")
        .select("customer_code", "period", "kwh")
        .sort("period")
        .collect()
    )
    out: dict[str, list[tuple[str, int]]] = {}
    for code, p, kwh in frame.iter_rows():
        out.setdefault(code, []).append((p, kwh))
    return out


def _buyers(state: StateStore) -> dict[str, dict[str, Any]]:
    import sqlalchemy as sa

    with state.read() as conn:
        rows = conn.execute(
            sa.text("SELECT customer_code, name, address, tax_code FROM customers")
        ).mappings()
        return {r["customer_code"]: dict(r) for r in rows}
