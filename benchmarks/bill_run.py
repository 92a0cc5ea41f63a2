"""Bill run benchmark: rate a city of synthetic customers, and sign its e-invoices.

Prints: seconds and peak memory to rate every customer with the vectorised engine
(billing.rating.rate, the hot path of `amr bill run`); a baseline in the same run: a plain
per-customer Python loop over the same tariff (billing.tiers, the reference arithmetic) on
a sample, extrapolated to the city; and e-invoice documents per second (build, XSD-validate,
XML-DSig sign) on one process and on every core, extrapolated to the city.

    .venv/bin/python benchmarks/bill_run.py            # 2.8 million customers
    .venv/bin/python benchmarks/bill_run.py --quick    # 200,000, a smoke test
    .venv/bin/python benchmarks/bill_run.py --einvoices  # only the e-invoice figures (60,000 docs)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import polars as pl  # noqa: E402

from billing import invoice_archive  # noqa: E402
from billing.documents import _write  # noqa: E402
from billing.einvoice import Seller, build_invoice, sign, to_bytes, validate  # noqa: E402
from billing.invoice_writer import InvoiceWriter  # noqa: E402
from billing.rating import SEGMENT_COLUMNS, check_priced, rate  # noqa: E402
from billing.tariffs import default_book  # noqa: E402
from billing.tiers import quotas, rate_tiers  # noqa: E402

START, END = dt.date(2026, 10, 31), dt.date(2026, 11, 30)
CITY = 2_800_000


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic(n: int) -> pl.DataFrame:
    """Deterministic customers: 90% residential (50-600 kWh, skewed low), 10% business with TOU."""
    i = pl.int_range(n, dtype=pl.Int64)
    a, b = (i * 2654435761 + 12345) % 1000, (i * 40503 + 777) % 1000
    business = (i % 10) == 9
    kwh = pl.when(business).then(300 + a * 5).otherwise(50 + (a * b) // 1800)
    return pl.select(
        pl.format("PD{}", (i + 10_000_000_000).cast(pl.String).str.slice(0, 11)).alias("customer_code"),
        pl.lit(0, pl.Int32).alias("seg"),
        pl.lit(START).alias("seg_start"),
        pl.lit(END).alias("seg_end"),
        pl.lit(END).alias("period_end"),
        pl.when(business).then(pl.lit("business")).otherwise(pl.lit("residential")).alias("tariff_class"),
        pl.when(business).then(pl.lit("lt6kv")).otherwise(None).alias("voltage"),
        pl.when(i % 7 == 0)
        .then(2000)
        .when(i % 13 == 0)
        .then(1500)
        .otherwise(1000)
        .cast(pl.Int64)
        .alias("h_milli"),
        pl.lit(False).alias("prorate"),
        pl.lit(31, pl.Int64).alias("month_days"),
        kwh.cast(pl.Int64).alias("kwh"),
        pl.when(business).then(kwh * 20 // 100).otherwise(0).cast(pl.Int64).alias("offpeak_kwh"),
        pl.when(business).then(kwh * 15 // 100).otherwise(0).cast(pl.Int64).alias("peak_kwh"),
    ).cast(pl.Schema(SEGMENT_COLUMNS))


def baseline(sample: pl.DataFrame) -> tuple[float, int]:
    """A plain per-customer Python loop with the same tariff and rules; returns (seconds, total VND)."""
    book = default_book()
    started = time.perf_counter()
    total = 0
    tariff = book.tariff_on(END)
    vat = book.vat_rate_on(END)
    for row in sample.iter_rows(named=True):
        if row["tariff_class"] == "residential":
            q = quotas(tariff.tiers, households=Decimal(row["h_milli"]) / 1000)
            amount = sum(line.amount for line in rate_tiers(Decimal(row["kwh"]), tariff.tiers, q))
        else:
            p = tariff.tou_prices(row["tariff_class"], row["voltage"])
            normal = row["kwh"] - row["offpeak_kwh"] - row["peak_kwh"]
            amount = normal * p.normal + row["offpeak_kwh"] * p.offpeak + row["peak_kwh"] * p.peak
        total += amount + int((Decimal(amount) * vat).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
    return time.perf_counter() - started, total


def _key_pair(elliptic: bool = False) -> tuple[bytes, bytes]:
    from billing.seller import self_signed_certificate

    return self_signed_certificate("benchmark seller", days=1, elliptic=elliptic)


BUYERS = [  # names and addresses with Vietnamese letters and characters XML escapes
    {"name": "Nguyễn Thị Ánh", "address": "Số 12 ngõ 5 phố Đặng Tiến Đông, Đống Đa, Hà Nội"},
    {"name": "Công ty TNHH Điện & Nước <Đông Anh>", "address": 'Lô "B2", KCN Thăng Long'},
    {"name": "Trần Văn Bình", "address": "Tổ 3, phường Phúc Xá, Ba Đình, Hà Nội"},
]


def _invoice(n: int) -> dict[str, object]:
    return {
        "template": "1",
        "series": "K26EAA",
        "number": n,
        "invoice_date": dt.date(2026, 12, 1),
        "kind": "original",
        "refers_to": None,
    }


def _reference(args: tuple[list[dict[str, object]], bytes, bytes]) -> int:
    """The reference path, per invoice: lxml tree, XSD validation, C14N twice, signature."""
    bills, key, cert = args
    seller = Seller(key_pem=key, cert_pem=cert)
    size = 0
    for n, bill in enumerate(bills, start=1):
        root = build_invoice(bill, _invoice(n), seller, BUYERS[n % len(BUYERS)])
        validate(root)
        size += len(to_bytes(sign(root, seller)))
    return size


def _fast(args: tuple[int, list[dict[str, object]], bytes | None, bytes | None, str | None, str]) -> int:
    """The canonical-bytes writer on a chunk; with a folder, stored as `amr bill issue` stores
    them: one file per invoice (temporary name, then renamed), or the chunk as one archive."""
    chunk, bills, key, cert, folder, layout = args
    writer = InvoiceWriter(Seller(key_pem=key, cert_pem=cert))
    size = 0
    rows = []
    for n, bill in enumerate(bills, start=1):
        xml = writer.document(bill, _invoice(n), BUYERS[n % len(BUYERS)])
        if folder is not None and layout == "files":
            _write(Path(folder) / f"{bill['customer_code']}-v1.xml", xml)
        elif folder is not None:
            rows.append((str(bill["customer_code"]), 1, f"1-K26EAA-{n:08d}", xml))
        size += len(xml)
    if rows and folder is not None:
        invoice_archive.write_part(Path(folder), chunk, rows)
    return size


_POOLS: dict[int, ProcessPoolExecutor] = {}


def _warm(_: int) -> int:
    return os.getpid()


def _pool(workers: int) -> ProcessPoolExecutor:
    """Started once and warmed up outside the timings; spawn, not fork: a forked child of a
    process whose Polars threads are running can hang."""
    if workers not in _POOLS:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        list(pool.map(_warm, range(workers * 4)))
        _POOLS[workers] = pool
    return _POOLS[workers]


def _rate(func: Any, chunks: list[Any], workers: int, n: int) -> float:
    pool = _pool(workers) if workers > 1 else None
    started = time.perf_counter()
    if pool is None:
        for chunk in chunks:
            func(chunk)
    else:
        list(pool.map(func, chunks))
    return n / (time.perf_counter() - started)


def reference_rate(bills: list[dict[str, object]], workers: int) -> float:
    key, cert = _key_pair(elliptic=True)
    return _rate(_reference, [(bills[i::workers], key, cert) for i in range(workers)], workers, len(bills))


def fast_rate(
    bills: list[dict[str, object]],
    *,
    workers: int,
    sign_with: str | None,
    folder: Path | None = None,
    layout: str = "files",
) -> float:
    key, cert = _key_pair(elliptic=sign_with == "ecdsa") if sign_with else (None, None)
    step = -(-len(bills) // (workers * 4))  # a few chunks per worker
    where = str(folder) if folder is not None else None
    chunks = [
        (i // step, bills[i : i + step], key, cert, where, layout) for i in range(0, len(bills), step)
    ]
    return _rate(_fast, chunks, workers, len(bills))


def end_to_end(n: int, root: Path) -> dict[str, float]:
    """`amr bill run` and `amr bill issue` over real stores: import, determinants, rating, write, number."""
    from billing.customers import import_customers
    from billing.issue import issue_bills
    from billing.run import run_bills
    from core.buckets import bucket_expr
    from core.config import Settings
    from core.measurements import MeasurementStore, partition
    from core.state import StateStore
    from core.tables import REGISTER_READS, REGISTER_READS_SCHEMA

    data = root / "data"
    state = StateStore.open(data)
    settings = Settings(data_dir=data, buckets=16)
    i = pl.int_range(n, dtype=pl.Int64)
    codes = pl.format("PD{}", (i + 10_000_000_000).cast(pl.String).str.slice(0, 11))
    fleet = pl.select(
        codes.alias("customer_code"),
        pl.format("M{}", i).alias("meter_id"),
        pl.lit("2025-01-01").alias("installed_on"),
        pl.when(i % 10 == 9).then(pl.lit("business")).otherwise(pl.lit("residential")).alias("tariff_class"),
    )
    fleet.write_csv(root / "customers.csv")
    started = time.perf_counter()
    assert import_customers(state, root / "customers.csv").ok
    imported = time.perf_counter() - started
    reads = (
        pl.concat(
            [
                pl.select(
                    pl.format("M{}", i).alias("meter_id"),
                    pl.lit(day).alias("date"),
                    pl.lit("1.0.1.8.0.255").alias("quantity"),
                    (i % 500 * 1000 * k + 123).alias("value"),
                    pl.lit(0).alias("scale"),
                    pl.lit("Wh").alias("unit"),
                    pl.lit(dt.datetime.combine(day, dt.time(17), dt.UTC)).alias("ts"),
                    pl.lit(False).alias("estimated"),
                )
                for k, day in ((1, START), (2, END))
            ]
        )
        .cast(pl.Schema(REGISTER_READS_SCHEMA))
        .with_columns(
            pl.col("date").dt.strftime("%Y-%m").alias("month"), bucket_expr("meter_id", settings.buckets)
        )
    )
    MeasurementStore(data).table(REGISTER_READS).write_partitions(
        {
            partition(month=m, bucket=int(b)): part.drop("month", "bucket")
            for (m, b), part in reads.partition_by("month", "bucket", as_dict=True).items()
        }
    )
    started = time.perf_counter()
    report = run_bills(data, state, period="2026-11", settings=settings)
    ran = time.perf_counter() - started
    started = time.perf_counter()
    issued = issue_bills(data, state, period="2026-11", settings=settings, invoice_date=dt.date(2026, 12, 1))
    numbered = time.perf_counter() - started
    assert report.bills == n and issued.issued == n - report.held
    return {"import_s": imported, "run_s": ran, "issue_s": numbered}


def einvoice_figures(rows: list[dict[str, object]], reference_n: int, workers: int) -> dict[str, float]:
    """E-invoices per second: the reference path, then the canonical-bytes writer, stored or not."""
    docs_n = len(rows)
    reference = reference_rate(rows[:reference_n], workers)
    unsigned = fast_rate(rows, workers=1, sign_with=None)
    ecdsa_one = fast_rate(rows, workers=1, sign_with="ecdsa")
    ecdsa_all = fast_rate(rows, workers=workers, sign_with="ecdsa")
    rsa_all = fast_rate(rows[: max(docs_n // 10, 300)], workers=workers, sign_with="rsa")  # RSA is slow
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "documents" / "2026-11"
        folder.mkdir(parents=True)
        # the archive first: the files' writeback would otherwise slow down what follows them
        archives = Path(tmp) / "einvoices"
        archived = fast_rate(rows, workers=workers, sign_with="ecdsa", folder=archives, layout="archive")
        kept = pl.scan_parquet(archives / "*.parquet").select(pl.len()).collect().item()
        stored = fast_rate(rows, workers=workers, sign_with="ecdsa", folder=folder)
        files = sum(1 for _ in folder.iterdir())
    assert files == docs_n and kept == docs_n, (files, kept)
    for pool in _POOLS.values():
        pool.shutdown()

    print(
        f"e-invoices, reference path (lxml tree + XSD + C14N + ECDSA, {reference_n:,} docs): "
        f"{reference:,.0f}/s on {workers} processes (baseline)"
    )
    print(
        f"e-invoices, canonical-bytes writer ({docs_n:,} docs): unsigned {unsigned:,.0f}/s on 1 process; "
        f"ECDSA P-256 {ecdsa_one:,.0f}/s on 1, {ecdsa_all:,.0f}/s on {workers}; "
        f"RSA-2048 {rsa_all:,.0f}/s on {workers}; stored, ECDSA on {workers}: one file each "
        f"{stored:,.0f}/s, one archive per partition {archived:,.0f}/s"
    )
    print(
        f"e-invoices for {CITY:,} on {workers} processes: {CITY / archived / 60:.1f} min ECDSA into "
        f"archives (goal 15), {CITY / stored / 60:.1f} min into files, {CITY / rsa_all / 60:.1f} min RSA "
        f"unstored; reference path "
        f"{CITY / reference / 60:.1f} min; ratio writer/reference (ECDSA, {workers} processes): "
        f"{ecdsa_all / reference:.1f}x"
    )
    return {
        "einvoices_per_s_reference_ecdsa": round(reference, 1),
        "einvoices_per_s_rsa": round(rsa_all, 1),
        "einvoices_per_s_ecdsa": round(ecdsa_all, 1),
        "einvoices_per_s_ecdsa_files": round(stored, 1),
        "einvoices_per_s_ecdsa_archive": round(archived, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 customers; a smoke test")
    parser.add_argument("--einvoices", action="store_true", help="only the e-invoice figures")
    args = parser.parse_args()
    n = 200_000 if args.quick else CITY
    sample_n = 5_000 if args.quick else 50_000
    docs_n = 3_000 if args.quick else 60_000
    reference_n = 300 if args.quick else 3_000
    workers = os.cpu_count() or 1
    if args.einvoices:
        few = check_priced(rate(synthetic(docs_n).lazy(), default_book(), split=False).collect())
        rows = few.with_columns(pl.lit("2026-11").alias("period")).to_dicts()
        print(json.dumps(einvoice_figures(rows, reference_n, workers)))
        return

    city = synthetic(n)
    book = default_book()
    rss_before = rss_mib()
    started = time.perf_counter()
    bills = check_priced(rate(city.lazy(), book, split=False).collect())
    seconds = time.perf_counter() - started
    peak = peak_mib()
    assert bills.height == n

    sample = city.head(sample_n)
    base_seconds, base_total = baseline(sample)
    engine_total = int(
        bills.filter(pl.col("customer_code").is_in(sample["customer_code"].implode()))["total_amount"].sum()
    )
    assert base_total == engine_total, (base_total, engine_total)  # same money both ways
    extrapolated = base_seconds * n / sample_n

    rows = bills.head(docs_n).with_columns(pl.lit("2026-11").alias("period")).to_dicts()
    print(f"customers rated: {n:,}")
    print(
        f"vectorised rating: {seconds:.2f} s ({n / seconds:,.0f} customers/s); "
        f"RSS before {rss_before:,.0f} MiB, peak {peak:,.0f} MiB"
    )
    print(
        f"baseline per-customer Python loop: {sample_n:,} in {base_seconds:.2f} s -> "
        f"{extrapolated:.1f} s extrapolated to {n:,}"
    )
    print(
        f"ratio baseline/vectorised: {extrapolated / seconds:.1f}x "
        f"(same total VND on the sample: {engine_total:,})"
    )
    if n != CITY:
        print(f"city estimate ({CITY:,}): {seconds * CITY / n:.1f} s vectorised (linear extrapolation)")
    figures = einvoice_figures(rows, reference_n, workers)
    e2e_n = 20_000 if args.quick else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        e2e = end_to_end(e2e_n, Path(tmp))
    print(
        f"end to end on real stores, {e2e_n:,} customers: import {e2e['import_s']:.1f} s, "
        f"bill run {e2e['run_s']:.1f} s, issue (numbering) {e2e['issue_s']:.1f} s; "
        f"city estimate (linear) run {e2e['run_s'] * CITY / e2e_n:.0f} s, "
        f"issue {e2e['issue_s'] * CITY / e2e_n:.0f} s"
    )
    print(
        json.dumps(
            {
                "customers": n,
                "rating_s": round(seconds, 2),
                "peak_rss_mib": round(peak),
                "baseline_extrapolated_s": round(extrapolated, 1),
                "ratio": round(extrapolated / seconds, 1),
                **figures,
            }
        )
    )


if __name__ == "__main__":
    main()
