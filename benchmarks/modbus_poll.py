"""Benchmark: read 1,000 simulated Modbus TCP meters once with a full SDM630 map.

The simulated fleet runs in another process (pymodbus servers, one port per meter); this
process reads every meter once with `read_modbus_meter`, first packing the map into as few
requests as allowed, then the baseline that reads one value per request. It prints reads per
second, the client's CPU per meter (user and kernel) and the request counts, and the ratios
of the baseline to the packed read.

    .venv/bin/python benchmarks/modbus_poll.py            # 1,000 meters, best of 3 rounds
    .venv/bin/python benchmarks/modbus_poll.py --quick    # 50 meters, one round, a smoke test

Goals (issue 4): at least 5x fewer requests than the baseline; at most 0.5 ms of client CPU
for a full-map read of an SDM630.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing as mp
import os
import resource
import sys
import time
import timeit
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.meter_url import MeterUrl
from protocols.modbus.client import Packing, decoders_for, map_for, plan_for, read_modbus_meter
from protocols.modbus.errors import ModbusError
from protocols.modbus.simulator import ModbusFleetSimulator
from protocols.modbus.snapshots import snapshot_readings

uvloop: ModuleType | None
try:
    import uvloop
except ImportError:  # optional: only for the extra round
    uvloop = None

MAP = "eastron-sdm630"


def serve(meters: int, urls: mp.Queue, stop: Event) -> None:  # type: ignore[type-arg]
    """The simulated fleet, in its own process."""

    async def main() -> None:
        async with ModbusFleetSimulator(meters=meters, map_name=MAP, seed=1) as fleet:
            urls.put([m.url for m in fleet.meters])
            while not stop.is_set():
                await asyncio.sleep(0.1)

    if uvloop is not None:  # the simulators answer faster on libuv, so the client is what is measured
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    else:
        asyncio.run(main())


@dataclass
class Round:
    packing: str
    meters: int
    failed: int
    requests: int
    wall: float
    user: float
    system: float

    @property
    def cpu_per_meter_ms(self) -> float:
        return (self.user + self.system) / self.meters * 1000

    def line(self) -> str:
        rate = self.meters / self.wall
        return (f"{self.packing:>7}: {self.meters} meters in {self.wall:.2f} s = {rate:,.0f} reads/s; "
                f"{self.requests:,} requests ({self.requests / self.meters:.1f}/meter); client CPU "
                f"{self.cpu_per_meter_ms:.3f} ms/meter (user {self.user / self.meters * 1000:.3f} + kernel "
                f"{self.system / self.meters * 1000:.3f}); failed {self.failed}")


async def read_all(urls: list[MeterUrl], packing: Packing, concurrency: int) -> Round:
    gate = asyncio.Semaphore(concurrency)
    failed = 0

    async def one(index: int, url: MeterUrl) -> None:
        nonlocal failed
        async with gate:
            try:
                await read_modbus_meter(url, f"M{index}", timeout=10, packing=packing)
            except ModbusError as exc:
                failed += 1
                print(f"  {url}: {exc}", file=sys.stderr)

    requests = len(plan_for(map_for(urls[0]), None, packing)) * len(urls)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    await asyncio.gather(*(one(i, u) for i, u in enumerate(urls)))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return Round(packing, len(urls), failed, requests, wall,
                 after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime)


def best(rounds: Iterable[Round]) -> Round:
    """The round of least client CPU: on a shared machine other work only ever adds to it."""
    return min(rounds, key=lambda r: r.user + r.system)


def on_libuv(urls: list[MeterUrl], concurrency: int) -> Round:
    assert uvloop is not None
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(read_all(urls, "blocks", concurrency))


def breakdown(url: MeterUrl, meters: int) -> str:
    """Where a packed read's CPU goes, outside the network: decoding, and building the Readings."""
    register_map = map_for(url)
    decoders = decoders_for(register_map, None, "blocks")
    answers = [bytes(decoder.size) for decoder in decoders]  # all zeros: good but for the frequency
    now = dt.datetime.now(dt.UTC)
    started = time.process_time()
    for _ in range(meters):
        values = []
        for decoder, data in zip(decoders, answers, strict=True):
            values += decoder.decode(data)[0]
    decoding = (time.process_time() - started) / meters
    started = time.process_time()
    for _ in range(meters):
        snapshot_readings(values, meter_id="M", ts=now, source="")
    building = (time.process_time() - started) / meters
    return (f"  of which, per meter: decoding {len(decoders)} responses {decoding * 1000:.3f} ms, building "
            f"{len(values)} Readings {building * 1000:.3f} ms; the rest is pymodbus, asyncio and the sockets")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 meters (a smoke test)")
    parser.add_argument("--meters", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=100, help="meters read at once")
    parser.add_argument("--rounds", type=int, default=None,
                        help="read the fleet this many times per kind and keep the round of least CPU "
                             "(other work on a shared machine only ever adds CPU); default 3, 1 with --quick")
    args = parser.parse_args()
    meters = args.meters or (50 if args.quick else 1000)
    rounds = args.rounds or (1 if args.quick else 3)

    context = mp.get_context("spawn")
    urls_queue = context.Queue()
    stop = context.Event()
    server = context.Process(target=serve, args=(meters, urls_queue, stop), daemon=True)
    server.start()
    try:
        urls = [MeterUrl.parse(u) for u in urls_queue.get(timeout=240)]
        asyncio.run(read_all(urls[: min(20, len(urls))], "blocks", args.concurrency))  # warm up caches
        packed = best(asyncio.run(read_all(urls, "blocks", args.concurrency)) for _ in range(rounds))
        single = best(asyncio.run(read_all(urls, "single", args.concurrency)) for _ in range(rounds))
        on_uvloop = None
        if uvloop is not None:  # the same packed read on libuv's event loop (as uvicorn runs)
            on_uvloop = best(on_libuv(urls, args.concurrency) for _ in range(rounds))
            on_uvloop.packing = "uvloop"
    finally:
        stop.set()
        server.join(30)
    # CPU time, not wall time: on a shared machine the wall clock mostly measures waiting for a core
    reference = min(timeit.Timer("sum(range(10**6))", timer=time.process_time).repeat(number=1, repeat=5))
    load = os.getloadavg()[0]
    print(f"Modbus poll, {meters} simulated TCP meters ({MAP}, full map), concurrency {args.concurrency}, "
          f"best of {rounds} round(s); this machine sums range(10**6) in {reference * 1000:.1f} ms of CPU "
          f"(a typical desktop core: 15-20 ms); load average {load:.2f} on {os.cpu_count()} cores")
    print(packed.line())
    print(breakdown(urls[0], min(meters, 300)))
    print(single.line())
    if on_uvloop is not None:
        print(on_uvloop.line() + "  (packed, on uvloop)")
    print(f"ratio requests baseline/packed: {single.requests / packed.requests:.1f}x (goal >= 5x)")
    print(f"ratio client CPU baseline/packed: {single.cpu_per_meter_ms / packed.cpu_per_meter_ms:.1f}x; "
          f"packed full-map read {packed.cpu_per_meter_ms:.3f} ms CPU/meter (goal <= 0.5 ms)")
    print(f"ratio reads/s packed/baseline: {single.wall / packed.wall:.1f}x")
    if packed.failed or single.failed or (on_uvloop is not None and on_uvloop.failed):
        sys.exit(1)


if __name__ == "__main__":
    main()
