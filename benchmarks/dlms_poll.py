"""DLMS poll benchmark: concurrent sessions against simulated meters in another process.

Each session associates, reads the clock, reads 6 registers (value and scaler) with
GET-WITH-LIST, reads one day of 15-minute load profile by range (96 intervals, block
transfer) and releases. Printed: client CPU milliseconds per session and sessions per
second, beside a baseline measured in the same run: dlms-cosem's stock blocking client
(DlmsClient over BlockingTcpIO) in a thread pool doing the same work. Then, unless
--quick, many sessions in flight at once in one process against meters that answer
after a simulated latency, counting errors.

Our sessions hand the profile over as columns (`core.reading.ReadingColumns`), as the baseline
hands over its decoded values; --as-readings also makes a `Reading` object of every profile row
(what a caller that iterates the rows pays; the head-end lands the columns as they are).

    .venv/bin/python benchmarks/dlms_poll.py [--quick] [--sessions N] [--in-flight N] [--latency S]
        [--as-readings]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as dt
import logging
import resource
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.meter_url import MeterUrl  # noqa: E402
from protocols.dlms.session import open_session  # noqa: E402

REGISTERS = [
    "1.0.1.8.0.255",
    "1.0.1.8.1.255",
    "1.0.1.8.2.255",
    "1.0.1.8.3.255",
    "1.0.1.8.4.255",
    "1.0.2.8.0.255",
]
PROFILE = "1.0.99.1.0.255"
T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T], loop: str) -> T:
    """Run `coro` on a fresh event loop of the kind asked for (uvloop or the stdlib's)."""
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    return asyncio.run(coro)


def _raise_file_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def serve(meters: int, latency: float, fleet_file: Path, loop: str, auth: str) -> None:
    """The simulator side (a child process): serve until stdin closes."""
    _raise_file_limit()
    from protocols.dlms.simulator.serve import serve_fleet

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(sys.stdin.fileno(), stop.set)  # the parent closes our stdin to stop us

        def ready(_: object) -> None:
            print("READY", flush=True)

        faults = [f"latency={latency}"] if latency else []
        await serve_fleet(
            meters=meters,
            framing="wrapper",
            port=0,
            faults=faults,
            auth=auth,
            fleet_file=fleet_file,
            keys_file=fleet_file.with_suffix(".keys.toml") if auth != "none" else None,
            ready=ready,
            stop=stop,
        )

    _run(main(), loop)


class Simulators:
    def __init__(
        self, meters: int, latency: float, processes: int = 1, loop: str = "asyncio", auth: str = "none"
    ) -> None:
        self.meters, self.latency, self.count, self.loop, self.auth = meters, latency, processes, loop, auth
        self.children: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        self.secrets: dict[str, bytes] = {}  # key reference -> ekey || akey (test keys of the fleet)
        self._dir = tempfile.TemporaryDirectory(prefix="dlms-bench-")

    def __enter__(self) -> Simulators:
        for index in range(self.count):
            path = Path(self._dir.name) / f"fleet{index}.csv"
            child = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--serve",
                    str(self.meters // self.count),
                    "--latency",
                    str(self.latency),
                    "--fleet-file",
                    str(path),
                    "--loop",
                    self.loop,
                    "--auth",
                    self.auth,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            self.children.append(child)
        for index, child in enumerate(self.children):
            assert child.stdout is not None
            line = child.stdout.readline()
            if not line.startswith(b"READY"):
                raise SystemExit(f"simulator {index} did not start: {line!r}")
            path = Path(self._dir.name) / f"fleet{index}.csv"
            with path.open() as handle:
                self.urls += [row["url"] for row in csv.DictReader(handle)]
            if self.auth == "hls-gmac":
                keys = tomllib.loads(path.with_suffix(".keys.toml").read_text())["meter-keys"]
                for meter, entry in keys.items():
                    secret = bytes.fromhex(entry["ekey"]) + bytes.fromhex(entry["akey"])
                    self.secrets[f"meter-keys:{meter}"] = secret
        return self

    def __exit__(self, *exc: object) -> None:
        for child in self.children:
            assert child.stdin is not None
            child.stdin.close()
        for child in self.children:
            child.wait(timeout=60)
        self._dir.cleanup()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _range() -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    end = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0) - dt.timedelta(minutes=15)
    return end - dt.timedelta(days=1), end


async def _one_session(
    url: str,
    start: dt.datetime,
    end: dt.datetime,
    timeout: float,
    secrets: Callable[[str], bytes] | None = None,
    as_readings: bool = False,
) -> int:
    async with open_session(MeterUrl.parse(url), timeout=timeout, secrets=secrets) as session:
        await session.read_clock()
        registers = await session.read_registers(REGISTERS)
        rows = await session.read_profile(PROFILE, start, end)
    if as_readings:
        deltas = sum(1 for r in rows if r.quantity == "1.0.1.29.0.255")
    else:
        deltas = rows.quantity.count("1.0.1.29.0.255")
    if len(registers) != 6 or deltas != 96:
        raise AssertionError(f"{url}: {len(registers)} registers, {deltas} intervals")
    return deltas


async def run_ours(
    urls: list[str],
    sessions: int,
    concurrency: int,
    timeout: float,
    secrets: Callable[[str], bytes] | None = None,
    as_readings: bool = False,
) -> tuple[float, float, Counter[str]]:
    start, end = _range()
    gate = asyncio.Semaphore(concurrency)
    errors: Counter[str] = Counter()

    # A ciphered meter takes one association at a time: two at once would interleave the client's
    # invocation counters, and the meter refuses a counter below one it has seen (replay).
    locks = {url: asyncio.Lock() for url in urls} if secrets is not None else {}

    async def bounded(index: int) -> None:
        url = urls[index % len(urls)]
        async with gate, locks.get(url) or contextlib.nullcontext():
            try:
                await _one_session(url, start, end, timeout, secrets, as_readings)
            except Exception as exc:  # counted and reported, the benchmark's whole point
                errors[type(exc).__name__] += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(bounded(i) for i in range(sessions)))
    return time.process_time() - cpu, time.perf_counter() - wall, errors


def _baseline_session(url: str, start: dt.datetime, end: dt.datetime) -> int:
    from dlms_cosem import cosem, enumerations, utils
    from dlms_cosem.client import DlmsClient
    from dlms_cosem.cosem.capture_object import CaptureObject
    from dlms_cosem.cosem.selective_access import RangeDescriptor
    from dlms_cosem.io import BlockingTcpIO, TcpTransport
    from dlms_cosem.security import NoSecurityAuthentication

    parsed = MeterUrl.parse(url)
    io = BlockingTcpIO(host=parsed.host, port=parsed.port)
    transport = TcpTransport(client_logical_address=16, server_logical_address=1, io=io)
    client = DlmsClient(transport=transport, authentication=NoSecurityAuthentication(), max_pdu_size=1024)

    def attribute(class_id: int, obis: str, index: int) -> cosem.CosemAttribute:
        return cosem.CosemAttribute(
            interface=enumerations.CosemInterface(class_id),
            instance=cosem.Obis.from_string(obis),
            attribute=index,
        )

    with client.session():
        utils.parse_as_dlms_data(client.get(attribute(8, "0.0.1.0.0.255", 2)))
        wanted = [
            cosem.CosemAttributeWithSelection(attribute(3, code, a), None)
            for code in REGISTERS
            for a in (2, 3)
        ]
        client.get_many(wanted).result  # noqa: B018 (decodes the values)
        utils.parse_as_dlms_data(client.get(attribute(7, PROFILE, 3)))
        clock_column = CaptureObject(attribute(8, "0.0.1.0.0.255", 2))
        buffer = utils.parse_as_dlms_data(
            client.get(attribute(7, PROFILE, 2), RangeDescriptor(clock_column, start, end))
        )
    if len(buffer) != 97:
        raise AssertionError(f"baseline: {len(buffer)} rows")
    return len(buffer)


def run_baseline(urls: list[str], sessions: int, threads: int) -> tuple[float, float, Counter[str]]:
    import structlog

    # dlms-cosem logs every APDU through structlog; silence it so the baseline is not charged for printing.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    start, end = _range()
    errors: Counter[str] = Counter()

    def one(index: int) -> None:
        try:
            _baseline_session(urls[index % len(urls)], start, end)
        except Exception as exc:  # counted and reported
            errors[type(exc).__name__] += 1

    cpu, wall = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(sessions)))
    return time.process_time() - cpu, time.perf_counter() - wall, errors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, under ~20 s (CI smoke test)")
    parser.add_argument("--sessions", type=int, help="sessions in the CPU comparison")
    parser.add_argument(
        "--concurrency", type=int, default=50, help="sessions in flight in the CPU comparison"
    )
    parser.add_argument("--meters", type=int, help="simulated meters")
    parser.add_argument("--in-flight", type=int, help="sessions at once in the latency run (0: skip)")
    parser.add_argument("--latency", type=float, default=0.3, help="simulated latency per answer, s")
    parser.add_argument(
        "--loop",
        choices=["uvloop", "asyncio"],
        default="uvloop",
        help="event loop of our client and of the simulators (default uvloop)",
    )
    parser.add_argument(
        "--as-readings",
        action="store_true",
        help="make a Reading object of every profile row (as a caller iterating the rows does)",
    )
    parser.add_argument("--auth", default="none", help=argparse.SUPPRESS)  # the simulators' side
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fleet-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.latency, args.fleet_file, args.loop, args.auth)
        return
    _raise_file_limit()
    sessions = args.sessions or (60 if args.quick else 1000)
    meters = args.meters or (10 if args.quick else 100)
    in_flight = args.in_flight if args.in_flight is not None else (200 if args.quick else 5000)
    concurrency = min(args.concurrency, sessions)

    print(
        f"DLMS poll: {sessions} sessions, {concurrency} in flight, "
        f"{meters} simulated meters in another process"
    )
    with Simulators(meters, latency=0.0, loop=args.loop) as sims:
        base_cpu, base_wall, base_errors = run_baseline(sims.urls, sessions, threads=concurrency)
        ours = run_ours(sims.urls, sessions, concurrency, timeout=30, as_readings=args.as_readings)
        our_cpu, our_wall, our_errors = _run(ours, args.loop)
    base_ms, our_ms = base_cpu * 1000 / sessions, our_cpu * 1000 / sessions
    print(
        f"  baseline dlms-cosem DlmsClient, {concurrency} threads: {base_ms:7.2f} CPU ms/session, "
        f"{sessions / base_wall:7.1f} sessions/s, errors {dict(base_errors) or 0}"
    )
    print(
        f"  amr asyncio sessions:                    {our_ms:7.2f} CPU ms/session, "
        f"{sessions / our_wall:7.1f} sessions/s, errors {dict(our_errors) or 0}"
        f"{' (profile rows made into Reading objects)' if args.as_readings else ''}"
    )
    print(f"  CPU per session, ours / baseline: {our_ms / base_ms:.2f} (goal <= 0.33)")
    # The same sessions with HLS-GMAC (mechanism 5) and every APDU general-glo ciphered. dlms-cosem's
    # client cannot be the baseline here: its glo envelope writes a one-byte length (see ciphering.py).
    hls_sessions = max(sessions // 2, 1)
    with Simulators(meters, latency=0.0, loop=args.loop, auth="hls-gmac") as sims:
        hls = run_ours(
            sims.urls, hls_sessions, concurrency, timeout=30, secrets=sims.secrets.__getitem__,
            as_readings=args.as_readings,
        )
        hls_cpu, hls_wall, hls_errors = _run(hls, args.loop)
    hls_ms = hls_cpu * 1000 / hls_sessions
    print(
        f"  amr, HLS-GMAC + general-glo ciphering:   {hls_ms:7.2f} CPU ms/session, "
        f"{hls_sessions / hls_wall:7.1f} sessions/s, errors {dict(hls_errors) or 0} "
        f"({hls_sessions} sessions; / public baseline: {hls_ms / base_ms:.2f})"
    )

    if in_flight:
        processes = 1 if in_flight <= 500 else 2
        print(
            f"DLMS in flight: {in_flight} sessions at once, {args.latency * 1000:.0f} ms latency per answer, "
            f"{min(in_flight, 1000)} meters in {processes} simulator process(es)"
        )
        before = _children_cpu()
        meters = min(in_flight, 1000)
        with Simulators(meters, latency=args.latency, processes=processes, loop=args.loop) as sims:
            many = run_ours(sims.urls, in_flight, in_flight, timeout=120, as_readings=args.as_readings)
            cpu, wall, errors = _run(many, args.loop)
        simulator_ms = (_children_cpu() - before) * 1000 / in_flight
        print(
            f"  {in_flight} sessions in {wall:.1f} s ({in_flight / wall:.1f} sessions/s), "
            f"{cpu * 1000 / in_flight:.2f} client CPU ms/session, "
            f"{simulator_ms:.2f} simulator CPU ms/session, errors {dict(errors) or 0}"
        )
        if errors:
            raise SystemExit(1)
    if our_errors or hls_errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
