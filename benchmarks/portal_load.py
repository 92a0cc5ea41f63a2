"""Portal load: a month of daily consumption for random customers, at rising load, with wrk.

Builds (or reuses) a synthetic installation: N customers with one meter each in the registry,
one month (2026-10) of `daily` rows per meter published through the measurement store,
and the portal's serving snapshot of it. Then serves the API with uvicorn (2 workers) on
loopback and drives it with wrk (Debian's package; closed-loop, so load rises by adding
connections) asking `GET /v1/customers/<random>/consumption?from=2026-10-01&to=2026-10-31`
with an integrator token. The baseline, measured in the same run at the same load, is
`GET /healthz` (no auth, no data): the ratio says what the data path costs.

    .venv/bin/python benchmarks/portal_load.py            # 2,800,000 customers
    .venv/bin/python benchmarks/portal_load.py --quick    # 20,000 customers, short steps

Goal (issue 8): >= 1,000 requests/s with p99 < 100 ms on 2 cores, load generator included.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402

from core.buckets import bucket_expr  # noqa: E402
from core.config import PortalSettings, Settings  # noqa: E402
from core.measurements import MeasurementStore, partition  # noqa: E402
from core.state import StateStore  # noqa: E402
from core.tables import DAILY, DAILY_SCHEMA  # noqa: E402
from portal_api.clients import add_client  # noqa: E402
from portal_api.serving import ServingSnapshot  # noqa: E402

MONTH = "2026-10"
DAYS = 31
WRK_SCRIPT = """
local n = {n}
local headers = {{}}
headers["Authorization"] = "Bearer {token}"
math.randomseed(os.time() + tonumber(tostring({{}}):sub(8), 16) % 1000)
request = function()
  local i = math.random(0, n - 1)
  local path = string.format("/v1/customers/PD%02d%09d/consumption?from={month}-01&to={month}-{days}",
                             i % 30 + 1, i)
  return wrk.format("GET", path, headers)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""
BASELINE_SCRIPT = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def build(data_dir: Path, customers: int, buckets: int) -> dict[str, float]:
    """The synthetic installation; returns how long each part took."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    ids = pl.DataFrame({"i": pl.int_range(0, customers, eager=True)}).with_columns(
        pl.format("M{}", pl.col("i").cast(pl.String).str.zfill(10)).alias("meter_id"),
        pl.format("PD{}{}", ((pl.col("i") % 30) + 1).cast(pl.String).str.zfill(2),
                  pl.col("i").cast(pl.String).str.zfill(9)).alias("customer_code"),
    ).with_columns(bucket_expr("meter_id", buckets))
    state = StateStore.open(data_dir)
    raw = state.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        cursor.executemany(
            "INSERT INTO meters (meter_id, meter_key, customer_code, url, protocol, bucket) "
            "VALUES (?, ?, ?, 'dlms+tcp://10.0.0.1:4059', 'dlms', ?)",
            ids.select("meter_id", pl.col("i") + 1, "customer_code", "bucket").iter_rows(),
        )
        cursor.execute("COMMIT")
    finally:
        raw.close()
    timings["registry_s"] = time.perf_counter() - started

    started = time.perf_counter()
    table = MeasurementStore(data_dir).table(DAILY)
    days = pl.DataFrame({"day": pl.int_range(1, DAYS + 1, eager=True)})
    written = {}
    for b in range(buckets):
        meters = ids.filter(pl.col("bucket") == b).select("i", "meter_id")
        rows = meters.join(days, how="cross").with_columns(
            (3000 + (pl.struct("i", "day").hash(7) % 12000).cast(pl.Int64)).alias("energy_wh"),
            pl.date(2026, 10, pl.col("day")).alias("date"),
        ).with_columns(
            (pl.col("energy_wh") * 30 // 100).alias("offpeak_wh"),
            (pl.col("energy_wh") * 50 // 100).alias("normal_wh"),
            (pl.col("energy_wh") - pl.col("energy_wh") * 30 // 100 - pl.col("energy_wh") * 50 // 100)
            .alias("peak_wh"),
            pl.lit(48, pl.Int32).alias("intervals"), pl.lit(0, pl.Int64).alias("estimated_wh"),
            pl.lit("intervals").alias("basis"),
        ).select([pl.col(c).cast(t) for c, t in DAILY_SCHEMA.items()])
        key = partition(month=MONTH, bucket=b)
        written[key] = [table.write_file(key, rows)]
    table.commit(replace=written)
    timings["daily_parquet_s"] = time.perf_counter() - started

    started = time.perf_counter()
    ServingSnapshot(data_dir).refresh()
    timings["serving_snapshot_s"] = time.perf_counter() - started
    state.dispose()
    return timings


def warm_page_cache(data_dir: Path) -> float:
    """Read the serving files and the registry once, as a long-running server's memory would
    hold them; otherwise the first minutes measure the disk, not the portal. Returns GB read."""
    total = 0
    for path in [*sorted((data_dir / "portal").rglob("*.db")), data_dir / "state.db"]:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 22):
                total += len(chunk)
    return total / 1e9


def wait_healthy(url: str, timeout_s: float) -> None:
    ends = time.monotonic() + timeout_s
    while time.monotonic() < ends:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as reply:  # noqa: S310 (loopback)
                if json.loads(reply.read())["status"] == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.2)  # a benchmark waiting for its server, not a test
    raise SystemExit(f"the portal at {url} did not become healthy in {timeout_s} s")


def integrator_token(url: str, client_id: str, secret: str) -> str:
    body = f"grant_type=client_credentials&client_id={client_id}&client_secret={secret}".encode()
    with urllib.request.urlopen(f"{url}/oauth/token", data=body, timeout=30) as reply:  # noqa: S310
        return str(json.loads(reply.read())["access_token"])


def run_wrk(url: str, script: Path, connections: int, duration_s: int, threads: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{duration_s}s", "--timeout", "5s",
         "-s", str(script), url],
        capture_output=True, text=True, timeout=duration_s + 60, check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    requests, duration_us, p50_us, p99_us, bad_status, socket_errors = (int(v) for v in line.split()[1:])
    return {"connections": connections, "rps": requests / (duration_us / 1e6), "p50_ms": p50_us / 1000,
            "p99_ms": p99_us / 1000, "non_2xx": bad_status, "socket_errors": socket_errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20,000 customers, short steps (CI smoke test)")
    parser.add_argument("--customers", type=int, default=None, help="default 2,800,000 (quick: 20,000)")
    parser.add_argument("--buckets", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--duration", type=int, default=None, help="seconds per step (default 10, quick 2)")
    parser.add_argument("--connections", default=None,
                        help="connection steps (default 1,4,16,32,64; quick 1,16)")
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse a synthetic installation here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    customers = args.customers or (20_000 if args.quick else 2_800_000)
    duration = args.duration or (2 if args.quick else 10)
    steps = [int(c) for c in (args.connections or ("1,16" if args.quick else "1,4,16,32,64")).split(",")]
    data_dir = args.data_dir or Path(tempfile.gettempdir()) / f"amr-portal-bench-{customers}-{args.buckets}"
    marker = data_dir / "bench-ready.json"
    if args.quick and args.data_dir is None and data_dir.exists() and not marker.exists():
        shutil.rmtree(data_dir)
    if marker.exists():
        built = json.loads(marker.read_text())
        print(f"reusing the synthetic installation in {data_dir}")
    else:
        if data_dir.exists():
            shutil.rmtree(data_dir)
        print(f"building {customers:,} customers x {DAYS} days in {data_dir} ...", flush=True)
        built = build(data_dir, customers, args.buckets)
        marker.write_text(json.dumps(built))
    print("build: " + ", ".join(f"{k} {v:.1f}" for k, v in built.items()))

    started = time.perf_counter()
    gigabytes = warm_page_cache(data_dir)
    print(f"page cache warmed: {gigabytes:.1f} GB of serving files and registry in "
          f"{time.perf_counter() - started:.1f} s")
    state = StateStore.open(data_dir)
    client = add_client(state, f"bench-{os.getpid()}-{int(time.time())}", rate_per_s=10_000_000)
    state.dispose()
    port = 18000 + os.getpid() % 1000
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AMR_DATA_DIR": str(data_dir), "AMR_BUCKETS": str(args.buckets),
           "AMR_PORTAL__SIGNING_KEY": "bench-signing-key", "AMR_PORTAL__PORT": str(port)}
    settings = Settings(data_dir=data_dir, buckets=args.buckets, portal=PortalSettings(port=port))
    code = ("from portal_api.serve import serve; from core.config import load_settings; "
            f"serve(load_settings(), workers={args.workers})")
    server = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO)
    results = []
    try:
        wait_healthy(url, 120)
        token = integrator_token(url, client.client_id, client.client_secret)
        with tempfile.TemporaryDirectory() as scratch:
            script = Path(scratch) / "consumption.lua"
            script.write_text(WRK_SCRIPT.format(n=customers, token=token, month=MONTH, days=DAYS))
            baseline = Path(scratch) / "baseline.lua"
            baseline.write_text(BASELINE_SCRIPT)
            if not args.quick:
                run_wrk(url, script, steps[0], 1, args.threads)  # warm the workers' caches
            print(f"\n{'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>7} "
                  f"{'base req/s':>10} {'ratio':>6}")
            for connections in steps:
                step = run_wrk(url, script, connections, duration, args.threads)
                base = run_wrk(f"{url}/healthz", baseline, connections, max(1, duration // 2), args.threads)
                step["baseline_rps"] = base["rps"]
                step["ratio"] = step["rps"] / base["rps"] if base["rps"] else 0.0
                results.append(step)
                print(f"{connections:>5} {step['rps']:>8.0f} {step['p50_ms']:>7.1f} {step['p99_ms']:>7.1f} "
                      f"{step['non_2xx']:>7} {base['rps']:>10.0f} {step['ratio']:>6.2f}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    good = [r for r in results if r["p99_ms"] < 100 and r["non_2xx"] == 0 and r["socket_errors"] == 0]
    best = max(good, key=lambda r: r["rps"]) if good else None
    print(f"\ncustomers {customers:,}, {settings.buckets} buckets, {args.workers} server workers, wrk on the "
          "same 2 cores")
    if best:
        print(f"sustained: {best['rps']:.0f} req/s with p50 {best['p50_ms']:.1f} ms, "
              f"p99 {best['p99_ms']:.1f} ms at {best['connections']} connections; "
              f"ratio to /healthz baseline {best['ratio']:.2f}x")
    else:
        print("sustained: no step kept p99 under 100 ms without errors")
    print(json.dumps({"customers": customers, "build": built, "steps": results}))


if __name__ == "__main__":
    main()
