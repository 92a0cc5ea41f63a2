"""A fleet of simulated Modbus meters on pymodbus's server, serving any register map.

A Modbus meter has no clock and no history: each read is answered with the registers as they
are at that moment on the simulators' clock (real or virtual), from the household load model
the DLMS simulator uses too. Everything (meter ids, customer codes, loads, which meters show
which fault) follows from the seed.

Transports:
    tcp       one Modbus TCP server per meter (its own port), unit 1
    rtu+tcp   one RTU-over-TCP gateway; the meters are units 1..N behind it
    serial    one RTU line on a pseudo-terminal pair (see nullmodem); meters are units 1..N
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import os
import random
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from core.clock import Clock, SystemClock
from core.fleet import FLEET_COLUMNS
from protocols.modbus.errors import SimulatorError
from protocols.modbus.faults import Fault, FaultKind, FaultSpecError, parse_faults
from protocols.modbus.maps import Function, RegisterMap, load_map
from protocols.modbus.nullmodem import PtyNullModem
from protocols.modbus.registerbank import RegisterBank
from protocols.simulation.household import HouseholdLoad, stable_unit

Transport = Literal["tcp", "rtu+tcp", "serial"]
ROUTES = 5
MAX_UNITS_PER_LINE = 247  # Modbus serial line addresses 1..247
_FUNCTIONS = {3: Function.HOLDING, 4: Function.INPUT}


@dataclass
class SimulatedMeter:
    """One simulated meter, as the fleet file describes it."""

    meter_id: str
    customer_code: str
    url: str
    unit: int
    route: str
    households: str
    tariff_class: str
    model: str
    load: HouseholdLoad = field(repr=False)
    faults: list[Fault] = field(default_factory=list)
    bank: RegisterBank | None = field(default=None, repr=False)
    rng: random.Random = field(default_factory=random.Random, repr=False)


class ModbusFleetSimulator:
    """`async with ModbusFleetSimulator(meters=50, map_name="eastron-sdm630", seed=1) as fleet:`."""

    def __init__(
        self,
        meters: int = 50,
        map_name: str = "eastron-sdm630",
        seed: int = 1,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        base_port: int = 0,
        faults: Sequence[Fault | str] = (),
        transport: Transport = "tcp",
        business_share: float = 0.05,
        epoch: dt.date = dt.date(2026, 1, 1),
    ) -> None:
        if meters < 1:
            raise SimulatorError(f"a simulated fleet needs at least 1 meter, got {meters}")
        if transport != "tcp" and meters > MAX_UNITS_PER_LINE:
            raise SimulatorError(f"an RTU line carries at most {MAX_UNITS_PER_LINE} meters, got {meters}",
                                 hint="use transport tcp, or several simulators")
        self.register_map: RegisterMap = load_map(map_name)
        self.seed = seed
        self.clock: Clock = clock or SystemClock()
        self.host = host
        self.base_port = base_port
        self.transport: Transport = transport
        self.faults = [f if isinstance(f, Fault) else Fault.parse(f) for f in faults]
        for fault in self.faults:
            if fault.kind is FaultKind.CRC and transport == "tcp":
                raise FaultSpecError("fault crc needs an RTU transport (serial or rtu+tcp)",
                                     hint="Modbus TCP frames carry no CRC")
            known = {code.value for code in ExcCodes}
            if fault.kind is FaultKind.EXCEPTION and fault.exception_code not in known:
                raise FaultSpecError(f"fault exception:{fault.exception_code}: not a Modbus exception code",
                                     hint="use 1-8, 10 or 11")
        self._count = meters
        self._business_share = business_share
        self._epoch = epoch
        self._servers: list[Any] = []
        self._modem: PtyNullModem | None = None
        self._by_unit: dict[int, SimulatedMeter] = {}
        self.meters: list[SimulatedMeter] = []
        self.device_path: str | None = None
        self.gateway_port: int | None = None

    # -- fleet description -------------------------------------------------------------------

    def _describe(self, index: int) -> SimulatedMeter:
        meter_id = f"MB{self.seed % 100:02d}{index + 1:06d}"
        business = stable_unit(self.seed, meter_id, "business") < self._business_share
        district = 1 + int(stable_unit(self.seed, meter_id, "district") * 30)
        load = HouseholdLoad(meter_id, seed=self.seed, kind="business" if business else "household",
                             epoch=self._epoch)
        chosen = [f for f in self.faults if stable_unit(self.seed, meter_id, "fault", f.kind) < f.share]
        return SimulatedMeter(
            meter_id=meter_id,
            # "9" leads the 9 digits so Modbus test customers never collide with other simulators'
            customer_code=f"PD{district:02d}9{self.seed % 100:02d}{index + 1:06d}",
            url="",
            unit=1 if self.transport == "tcp" else index + 1,
            route=f"R{index % ROUTES + 1:02d}",
            households="1" if business or index % 10 else "2",
            tariff_class="business" if business else "residential",
            model=self.register_map.name,
            load=load,
            faults=chosen,
            rng=random.Random(f"{self.seed}:{meter_id}"),
        )

    def _url(self, meter: SimulatedMeter, port: int | None) -> str:
        query = f"unit={meter.unit}&map={self.register_map.name}"
        if self.transport == "serial":
            return f"modbus+rtu://{self.device_path}?baud=9600&{query}"
        scheme = "modbus+tcp" if self.transport == "tcp" else "modbus+rtu+tcp"
        return f"{scheme}://{self.host}:{port}?{query}"

    def write_fleet_file(self, path: Path) -> Path:
        """The fleet as a registry import file (core.fleet.FLEET_COLUMNS), written atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with temporary.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(FLEET_COLUMNS))
            writer.writeheader()
            for meter in self.meters:
                writer.writerow({
                    "meter_id": meter.meter_id, "customer_code": meter.customer_code, "url": meter.url,
                    "model": meter.model, "route": meter.route, "installed_on": self._epoch.isoformat(),
                    "removed_on": "", "ct_ratio": 1, "vt_ratio": 1, "read": "registers",
                    "households": meter.households, "tariff_class": meter.tariff_class,
                })
        temporary.replace(path)
        return path

    # -- serving ----------------------------------------------------------------------------

    def _device(self, meter: SimulatedMeter) -> SimDevice:
        start_wh = meter.load.register_wh(self.clock.now())
        wrap_wh: int | None = None
        for fault in meter.faults:
            if fault.kind is FaultKind.WRAP:
                wrap_wh = int(fault.arg * 1000) if fault.arg is not None else start_wh + 1000
        meter.bank = RegisterBank(self.register_map, meter.load, self.clock.now, wrap_wh)
        blocks: list[list[SimData]] = []
        for function in (Function.HOLDING, Function.INPUT):
            span = meter.bank.spans(function)
            if span is None:
                blocks.append([SimData(address=0, count=1, datatype=DataType.INVALID)])
            else:
                blocks.append([SimData(address=span[0], count=span[1] - span[0], values=0,
                                       datatype=DataType.REGISTERS, readonly=True)])
        no_bits = [SimData(address=0, values=[False] * 16, datatype=DataType.BITS)]
        return SimDevice(id=meter.unit, simdata=(no_bits, list(no_bits), blocks[0], blocks[1]),
                         action=partial(self._serve, meter))

    @staticmethod
    def _fires(meter: SimulatedMeter, kind: FaultKind) -> Fault | None:
        for fault in meter.faults:
            if fault.kind is kind and (fault.rate >= 1.0 or meter.rng.random() < fault.rate):
                return fault
        return None

    async def _serve(self, meter: SimulatedMeter, function_code: int, start_address: int, address: int,
                     count: int, registers: list[int], values: Any) -> ExcCodes | None:
        """pymodbus's action hook: fill the requested registers as they are now, or fail on purpose."""
        function = _FUNCTIONS.get(function_code)
        if function is None or values:
            return ExcCodes.ILLEGAL_FUNCTION  # a meter's measurements are read-only
        fault = self._fires(meter, FaultKind.EXCEPTION)
        if fault is not None:
            return ExcCodes(fault.exception_code)
        assert meter.bank is not None
        meter.bank.fill(function, start_address, registers, address, count)
        return None

    def _trace_line(self, sending: bool, data: bytes) -> bytes:
        """pymodbus's packet hook on an RTU line's server: an answer starts with its unit id."""
        if not sending or not data:
            return data
        if data[0] not in self._by_unit:
            return b""  # nobody at that address on a real line: silence, not an answer
        return self._apply_line_faults(self._by_unit[data[0]], data)

    def _apply_line_faults(self, meter: SimulatedMeter, data: bytes) -> bytes:
        if self._fires(meter, FaultKind.NO_ANSWER) is not None:
            return b""
        if self.transport != "tcp" and self._fires(meter, FaultKind.CRC) is not None:
            return data[:-1] + bytes([data[-1] ^ 0xFF])
        return data

    def _trace_meter(self, meter: SimulatedMeter, sending: bool, data: bytes) -> bytes:
        """pymodbus's packet hook on one meter's TCP server."""
        if not sending or not data:
            return data
        return self._apply_line_faults(meter, data)

    async def __aenter__(self) -> ModbusFleetSimulator:
        self.meters = [self._describe(i) for i in range(self._count)]
        try:
            if self.transport == "tcp":
                await self._start_tcp()
            else:
                await self._start_line()
        except BaseException:
            await self.stop()
            raise
        return self

    async def _start_tcp(self) -> None:
        for index, meter in enumerate(self.meters):
            port = self.base_port + index if self.base_port else 0
            server = ModbusTcpServer(self._device(meter), address=(self.host, port),
                                     trace_packet=partial(self._trace_meter, meter))
            self._servers.append(server)
            await server.serve_forever(background=True)
            meter.url = self._url(meter, _bound_port(server))

    async def _start_line(self) -> None:
        self._by_unit = {meter.unit: meter for meter in self.meters}
        devices = [self._device(meter) for meter in self.meters]
        server: Any
        if self.transport == "serial":
            self._modem = await PtyNullModem().__aenter__()
            self.device_path = self._modem.client_path
            server = ModbusSerialServer(devices, port=self._modem.server_path, baudrate=9600,
                                        trace_packet=self._trace_line, reconnect_delay=0)
            self._servers.append(server)
            await server.serve_forever(background=True)
            port = None
        else:
            server = ModbusTcpServer(devices, address=(self.host, self.base_port), framer=FramerType.RTU,
                                     trace_packet=self._trace_line)
            self._servers.append(server)
            await server.serve_forever(background=True)
            port = _bound_port(server)
            self.gateway_port = port
        for meter in self.meters:
            meter.url = self._url(meter, port)

    async def stop(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            await server.shutdown()
        if self._modem is not None:
            await self._modem.__aexit__(None, None, None)
            self._modem = None
        await asyncio.sleep(0)  # let closed transports run their last callbacks

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    def register_wh(self, meter_id: str, when: dt.datetime | None = None) -> int:
        """The simulated import register of a meter (for checking reads), integer Wh."""
        for meter in self.meters:
            if meter.meter_id == meter_id:
                return meter.load.register_wh(when or self.clock.now())
        raise SimulatorError(f"no simulated meter {meter_id!r}", hint="fleet.meters lists the meter ids")


def run_fleet(
    simulator: ModbusFleetSimulator,
    *,
    fleet_file: Path,
    on_ready: Callable[[ModbusFleetSimulator], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the fleet, write its fleet file, and run until `stop` is set or Ctrl-C."""

    async def serve() -> None:
        async with simulator as fleet:
            fleet.write_fleet_file(fleet_file)
            if on_ready is not None:
                on_ready(fleet)
            await (stop or asyncio.Event()).wait()

    with suppress(KeyboardInterrupt):
        asyncio.run(serve())


def _bound_port(server: ModbusTcpServer) -> int:
    """The port the OS gave a server bound to port 0."""
    sockets = getattr(server.transport, "sockets", None)  # asyncio's or uvloop's server
    if not sockets:
        raise SimulatorError(f"the simulated meter's server did not bind {server.comm_params.source_address}")
    port: int = sockets[0].getsockname()[1]
    return port


__all__ = ["ModbusFleetSimulator", "SimulatedMeter", "parse_faults", "run_fleet"]
