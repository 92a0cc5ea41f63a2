"""Fleet poll benchmark: the head-end reading a mixed DLMS and Modbus fleet, against a baseline.

The simulators run in their own processes (DLMS meters with a simulated line latency, one
Modbus TCP server per meter), so the head-end's process holds only the head-end. Each meter
gives one day of its 15-minute load profile and its registers (DLMS) or its map's registers
(Modbus). Printed: wall time, meters per second, head-end CPU milliseconds per meter, peak
memory; then the same fleet read by the stock blocking clients (dlms-cosem's DlmsClient and
pymodbus's synchronous ModbusTcpClient) in a thread pool, and the ratio.

    .venv/bin/python benchmarks/fleet_poll.py            # 2,000 meters (sized for 2 shared cores)
    .venv/bin/python benchmarks/fleet_poll.py --quick    # 100 meters, CI smoke test
    .venv/bin/python benchmarks/fleet_poll.py --meters 10000 --latency 0.3

The issue's goal: at most 2 ms of head-end CPU per meter-day (2.8 million meters a day in
under 1.6 CPU-hours on one 2-core node).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.clock import VirtualClock  # noqa: E402
from core.config import HeadendSettings  # noqa: E402
from core.landing import list_batches  # noqa: E402
from core.meter_url import MeterUrl  # noqa: E402
from core.reading import Reading, ReadingColumns, from_frame  # noqa: E402
from core.state import StateStore  # noqa: E402
from headend.loop import loop_name  # noqa: E402
from headend.loop import run as run_loop  # noqa: E402
from headend.poll import PollOptions, poll_meters  # noqa: E402
from headend.registry import Meter, import_fleet, list_meters  # noqa: E402
from headend.sessions import CLOCK, PROFILES, REGISTERS, MeterSession  # noqa: E402

DLMS_SIM = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from protocols.dlms.simulator.fleet import DlmsFleetSimulator
    async def main():
        count, first = int(sys.argv[1]), int(sys.argv[2])
        latency, path = float(sys.argv[3]), Path(sys.argv[4])
        faults = [f"latency={latency}"] if latency else []
        async with DlmsFleetSimulator(count, first_meter=first, faults=faults, seed=11) as sim:
            sim.write_fleet_file(path)
            print("READY", flush=True)
            await asyncio.Event().wait()
    asyncio.run(main())
""")
MODBUS_SIM = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from protocols.modbus.simulator import ModbusFleetSimulator
    async def main():
        async with ModbusFleetSimulator(meters=int(sys.argv[1]), seed=int(sys.argv[2])) as sim:
            sim.write_fleet_file(Path(sys.argv[3]))
            print("READY", flush=True)
            await asyncio.Event().wait()
    asyncio.run(main())
""")
DLMS_PER_PROCESS = 500
MODBUS_PER_PROCESS = 500


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def start_simulators(
    work: Path, dlms: int, modbus: int, latency: float
) -> tuple[list[subprocess.Popen[str]], list[Path]]:
    procs: list[subprocess.Popen[str]] = []
    files: list[Path] = []
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for index, first in enumerate(range(1, dlms + 1, DLMS_PER_PROCESS)):
        count = min(DLMS_PER_PROCESS, dlms - first + 1)
        path = work / f"dlms-{index}.csv"
        script = [sys.executable, "-c", DLMS_SIM, str(count), str(first), str(latency), str(path)]
        procs.append(subprocess.Popen(script, stdout=subprocess.PIPE, text=True, env=env))
        files.append(path)
    for index, first in enumerate(range(0, modbus, MODBUS_PER_PROCESS)):
        count = min(MODBUS_PER_PROCESS, modbus - first)
        path = work / f"modbus-{index}.csv"
        script = [sys.executable, "-c", MODBUS_SIM, str(count), str(20 + index), str(path)]
        procs.append(subprocess.Popen(script, stdout=subprocess.PIPE, text=True, env=env))
        files.append(path)
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "READY":
            raise SystemExit(f"a simulator did not start (said {line!r})")
    return procs, files


def register(work: Path, files: list[Path], *, rewrite: bool = True) -> tuple[StateStore, list[Meter]]:
    state = StateStore.open(work / "data")
    for path in files:
        if rewrite:
            path.write_text(path.read_text().replace("registers,profile,clock", "profile,registers"))
        report = import_fleet(state, path, buckets=16)
        if not report.applied:
            raise SystemExit(f"{path}: {report.errors[:3]}")
    return state, list_meters(state)


# -- the head-end alone: the same readings handed back without protocol or sockets -----------

class ReplaySession:
    """A meter session that returns the readings the real run landed for this meter."""

    def __init__(self, meter: Meter, profile: Sequence[Reading], registers: list[Reading],
                 now: dt.datetime) -> None:
        self.capabilities = (frozenset({CLOCK, PROFILES, REGISTERS}) if meter.protocol == "dlms"
                             else frozenset({REGISTERS}))
        self.profile, self.registers, self.now = profile, registers, now

    async def read_clock(self) -> dt.datetime:
        return self.now

    async def read_profile(self, profile: str, start: dt.datetime, end: dt.datetime) -> Sequence[Reading]:
        return self.profile  # what the real round kept of [start, end]; the round cuts it again

    async def read_registers(self) -> list[Reading]:
        return self.registers

    async def read_events(self, since: dt.datetime) -> list[Reading]:
        return []

    async def shift_time(self, seconds: int) -> None:
        """The replayed clock is never off."""

    async def set_clock(self, when: dt.datetime) -> None:
        """The replayed clock is never off."""


def _as_columns(rows: list[Reading]) -> Sequence[Reading]:
    """A profile as the DLMS session hands it over (core.reading.ReadingColumns)."""
    if not rows:
        return []
    return ReadingColumns(
        rows[0].meter_id, [r.quantity for r in rows], [r.ts for r in rows], [r.value for r in rows],
        [r.scale for r in rows], [r.unit for r in rows], [r.status for r in rows], rows[0].source,
        rows[0].read_at,
    )


class ReplayConnector:
    """Sessions that replay; each meter's answers are prepared before the round is measured."""

    def __init__(self, readings: dict[str, list[Reading]], now: dt.datetime) -> None:
        self.now = now
        self.answers = {
            meter_id: (_as_columns([r for r in rows if not r.snapshot]), [r for r in rows if r.snapshot])
            for meter_id, rows in readings.items()
        }

    @asynccontextmanager
    async def session(self, meter: Meter, *, timeout: float, source: str) -> AsyncIterator[MeterSession]:
        profile, registers = self.answers.get(meter.meter_id, ([], []))
        yield ReplaySession(meter, profile, registers, self.now)


def head_end_alone(work: Path, files: list[Path], data_dir: Path, since: dt.datetime, now: dt.datetime,
                   settings: HeadendSettings) -> tuple[float, int, int]:
    """CPU seconds of the same round with every session replaying what the real one landed."""
    readings: dict[str, list[Reading]] = {}
    for batch in list_batches(data_dir):
        for reading in from_frame(batch.read()):
            readings.setdefault(reading.meter_id, []).append(reading)
    state, meters = register(work / "replay", files, rewrite=False)
    connector = ReplayConnector(readings, now)
    cpu = cpu_seconds()
    report = run_loop(poll_meters(state, work / "replay" / "data", meters, settings=settings, since=since,
                                  clock=VirtualClock(now), connector=connector,
                                  options=PollOptions(kind="benchmark")), settings.event_loop)
    return cpu_seconds() - cpu, report.ok, report.readings


# -- the baseline: stock blocking clients in a thread pool ------------------------------------

def baseline_dlms(url: MeterUrl, since: dt.datetime, until: dt.datetime) -> int:
    from dlms_cosem import cosem, enumerations
    from dlms_cosem.client import DlmsClient
    from dlms_cosem.cosem import Obis
    from dlms_cosem.cosem.selective_access import CaptureObject, RangeDescriptor
    from dlms_cosem.io import BlockingTcpIO, TcpTransport
    from dlms_cosem.security import NoSecurityAuthentication

    clock = cosem.CosemAttribute(
        interface=enumerations.CosemInterface.CLOCK, instance=Obis(0, 0, 1, 0, 0, 255), attribute=2
    )
    transport = TcpTransport(client_logical_address=url.int_param("client", 16),
                             server_logical_address=url.int_param("server", 1),
                             io=BlockingTcpIO(host=url.host or "", port=url.port or 4059, timeout=30))
    client = DlmsClient(transport=transport, authentication=NoSecurityAuthentication(), timeout=30)
    received = 0
    with client.session() as session:
        received += len(session.get(clock))
        selector = RangeDescriptor(restricting_object=CaptureObject(cosem_attribute=clock, data_index=0),
                                   from_value=since, to_value=until)
        received += len(session.get(cosem.CosemAttribute(
            interface=enumerations.CosemInterface.PROFILE_GENERIC, instance=Obis(1, 0, 99, 1, 0, 255),
            attribute=2), access_descriptor=selector))
        for rate in range(5):
            received += len(session.get(cosem.CosemAttribute(
                interface=enumerations.CosemInterface.REGISTER, instance=Obis(1, 0, 1, 8, rate, 255),
                attribute=2)))
    return received


def baseline_modbus(url: MeterUrl) -> int:
    from pymodbus.client import ModbusTcpClient

    from protocols.modbus.client import map_for, plan_for
    from protocols.modbus.maps import Function

    blocks = plan_for(map_for(url), None, "blocks")
    client = ModbusTcpClient(url.host or "", port=url.port or 502, timeout=30)
    client.connect()
    received = 0
    try:
        for block in blocks:
            holding = block.function is Function.HOLDING
            read = client.read_holding_registers if holding else client.read_input_registers
            response = read(block.address, count=block.count, device_id=url.int_param("unit", 1))
            received += len(response.registers)
    finally:
        client.close()
    return received


def run_baseline(meters: list[Meter], since: dt.datetime, threads: int) -> tuple[float, float, int]:
    until = since + dt.timedelta(days=1)
    began, cpu = time.perf_counter(), cpu_seconds()
    ok = 0
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(baseline_dlms, m.url, since, until) if m.protocol == "dlms"
                   else pool.submit(baseline_modbus, m.url) for m in meters]
        for future in futures:
            try:
                future.result()
                ok += 1
            except Exception as exc:  # noqa: BLE001 - a baseline failure is counted, not fatal
                print(f"  baseline failure: {type(exc).__name__}: {exc}"[:160])
    return time.perf_counter() - began, cpu_seconds() - cpu, ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 meters, for CI")
    parser.add_argument("--meters", type=int, default=2000, help="fleet size, half DLMS and half Modbus")
    parser.add_argument("--latency", type=float, default=0.3, help="simulated DLMS line latency, seconds")
    parser.add_argument("--threads", type=int, default=64, help="baseline thread pool size")
    parser.add_argument("--concurrency", type=int, default=0, help="sessions in flight (0: the whole fleet)")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    meters_total = 100 if args.quick else args.meters
    latency = 0.05 if args.quick else args.latency
    logging.disable(logging.WARNING)  # dlms-cosem logs every frame through structlog
    try:
        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    except ImportError:
        pass
    dlms = meters_total // 2
    modbus = meters_total - dlms
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"fleet: {dlms} DLMS (latency {latency} s per answer) + {modbus} Modbus meters, "
              f"simulators in other processes")
        began = time.perf_counter()
        procs, files = start_simulators(work, dlms, modbus, latency)
        try:
            print(f"simulators ready in {time.perf_counter() - began:.1f} s")
            state, meters = register(work, files)
            now = dt.datetime.now(dt.UTC)
            since = now - dt.timedelta(days=1)
            in_flight = args.concurrency or len(meters)
            settings = HeadendSettings(concurrency=in_flight, per_line=1, session_timeout_s=120,
                                       retries=1, backoff_s=0.5)
            cpu, began = cpu_seconds(), time.perf_counter()
            # the event loop production runs (headend/loop.py: uvloop unless configured otherwise)
            report = run_loop(poll_meters(state, work / "data", meters, settings=settings, since=since,
                                          options=PollOptions(kind="benchmark")), settings.event_loop)
            wall, used = time.perf_counter() - began, cpu_seconds() - cpu
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"head-end:  {report.ok}/{len(meters)} ok, {report.readings} readings, wall {wall:.2f} s, "
                  f"{len(meters) / wall:.0f} meters/s, CPU {used * 1000 / len(meters):.2f} ms/meter, "
                  f"peak RSS {peak_mb:.0f} MiB, peak sessions {report.peaks.get('global', 0)}, "
                  f"event loop {loop_name(settings.event_loop)}")
            if report.failures:
                print(f"  failures: {dict(list(report.failures.items())[:5])}")
            projected = used / len(meters) * 2_800_000 / 3600
            print(f"projection: 2.8 M meter-days need {projected:.2f} head-end CPU-hours (goal < 1.6)")
            alone, alone_ok, alone_rows = head_end_alone(work, files, work / "data", since, now, settings)
            print(f"head-end alone (same readings replayed, no protocol, no sockets): {alone_ok} ok, "
                  f"{alone_rows} readings, CPU {alone * 1000 / len(meters):.2f} ms/meter; so the protocol "
                  f"layers and sockets take {(used - alone) * 1000 / len(meters):.2f} ms/meter")
            if not args.no_baseline:
                b_wall, b_cpu, b_ok = run_baseline(meters, since, args.threads)
                print(f"baseline:  {b_ok}/{len(meters)} ok, wall {b_wall:.2f} s, "
                      f"{len(meters) / b_wall:.0f} meters/s, CPU {b_cpu * 1000 / len(meters):.2f} ms/meter "
                      f"({args.threads} threads, blocking clients)")
                print(f"ratio (baseline / head-end): wall time {b_wall / wall:.2f}x, "
                      f"CPU per meter {b_cpu / used:.2f}x (above 1 means the head-end is better)")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(10)


if __name__ == "__main__":
    main()
