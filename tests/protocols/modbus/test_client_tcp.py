"""read_modbus_meter against simulated meters over real Modbus TCP sockets on loopback."""

from __future__ import annotations

import datetime as dt
import socket
from decimal import Decimal
from pathlib import Path

import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from core.clock import VirtualClock
from core.meter_url import MeterUrl
from core.obis import ACTIVE_IMPORT_TOTAL
from protocols.errors import BadValue, RemoteProtocolError
from protocols.modbus.client import PartialRead, read_modbus_meter
from protocols.modbus.errors import (
    LineSettingsError,
    MapError,
    MapMismatch,
    ModbusConnectionLost,
    ModbusExceptionResponse,
    ModbusTimeout,
)
from protocols.modbus.maps import load_map
from protocols.modbus.simulator import ModbusFleetSimulator

from .conftest import run


def _url(text: str, **changes: str) -> MeterUrl:
    url = MeterUrl.parse(text)
    return MeterUrl(url.scheme, url.host, url.port, url.device, {**url.params, **changes})


def test_full_sdm630_read_matches_the_simulated_load(clock: VirtualClock) -> None:
    async def scenario() -> None:
        async with ModbusFleetSimulator(meters=2, map_name="eastron-sdm630", seed=3, clock=clock) as fleet:
            meter = fleet.meters[0]
            readings = await read_modbus_meter(MeterUrl.parse(meter.url), meter.meter_id, clock=clock,
                                               timeout=5, source="poll-1")
            assert {r.quantity for r in readings} == set(load_map("eastron-sdm630").quantities)
            assert all(r.snapshot and r.ts == clock.now() and r.source == "poll-1" for r in readings)
            energy = next(r for r in readings if r.quantity == ACTIVE_IMPORT_TOTAL)
            truth = fleet.register_wh(meter.meter_id)
            # served as an f32 in kWh, read back rounded once to 10 Wh
            assert (energy.unit, energy.scale) == ("Wh", 1)
            assert abs(energy.decimal - truth) <= 5 + truth * Decimal(2) ** -23
            voltage = next(r for r in readings if r.quantity == "1.0.32.7.0.255")
            assert Decimal(220) < voltage.decimal < Decimal(240) and voltage.scale == -1

            clock.advance(dt.timedelta(hours=2))
            later = await read_modbus_meter(MeterUrl.parse(meter.url), meter.meter_id, clock=clock,
                                            quantities=[ACTIVE_IMPORT_TOTAL])
            assert len(later) == 1 and later[0].decimal > energy.decimal  # the load kept drawing

    run(scenario())


def test_iem3000_energy_is_exact_wh(clock: VirtualClock) -> None:
    async def scenario() -> None:
        async with ModbusFleetSimulator(meters=1, map_name="schneider-iem3000", clock=clock) as fleet:
            meter = fleet.meters[0]
            readings = await read_modbus_meter(MeterUrl.parse(meter.url), meter.meter_id, clock=clock,
                                               quantities=["1.0.1.8.0.255", "1-0:1.8.1.255"])
            by_code = {r.quantity: r for r in readings}
            assert by_code["1.0.1.8.0.255"].value == fleet.register_wh(meter.meter_id)
            assert by_code["1.0.1.8.0.255"].scale == 0
            assert 0 < by_code["1.0.1.8.1.255"].value < by_code["1.0.1.8.0.255"].value

    run(scenario())


def test_a_map_that_does_not_fit_the_meter_says_so(clock: VirtualClock) -> None:
    async def scenario() -> None:
        async with ModbusFleetSimulator(meters=1, map_name="eastron-sdm630", clock=clock) as fleet:
            wrong = _url(fleet.meters[0].url, map="schneider-iem3000")  # holding registers it lacks
            with pytest.raises(MapMismatch) as caught:
                await read_modbus_meter(wrong, "M1", clock=clock)
            assert caught.value.code == 2 and not caught.value.retryable
            assert "does not fit this meter" in str(caught.value) and "schneider-iem3000" in str(caught.value)

    run(scenario())


def test_exception_fault_is_a_remote_error_with_the_code(clock: VirtualClock) -> None:
    async def scenario() -> None:
        async with ModbusFleetSimulator(meters=1, clock=clock, faults=["exception:6"]) as fleet:
            with pytest.raises(ModbusExceptionResponse) as caught:
                await read_modbus_meter(MeterUrl.parse(fleet.meters[0].url), "M1", clock=clock)
            assert caught.value.code == 6 and caught.value.retryable  # busy: try again later
            assert "server device busy" in str(caught.value)

    run(scenario())


def test_no_answer_is_a_retryable_timeout(clock: VirtualClock) -> None:
    async def scenario() -> None:
        async with ModbusFleetSimulator(meters=1, clock=clock, faults=["no-answer"]) as fleet:
            with pytest.raises(ModbusTimeout) as caught:
                await read_modbus_meter(MeterUrl.parse(fleet.meters[0].url), "M1", clock=clock, timeout=0.3)
            assert isinstance(caught.value, RemoteProtocolError) and caught.value.retryable

    run(scenario())


def test_a_meters_own_timeout_wins_and_a_bad_one_is_refused(clock: VirtualClock) -> None:
    async def scenario() -> None:
        async with ModbusFleetSimulator(meters=1, clock=clock, faults=["no-answer"]) as fleet:
            url = _url(fleet.meters[0].url, timeout="0.2")
            with pytest.raises(ModbusTimeout, match=r"within 0\.2 s"):
                await read_modbus_meter(url, "M1", clock=clock, timeout=30)
            with pytest.raises(LineSettingsError, match="timeout 'soon'"):
                await read_modbus_meter(_url(fleet.meters[0].url, timeout="soon"), "M1", clock=clock)

    run(scenario())


def test_nothing_listening_is_a_retryable_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: connections are refused
        url = MeterUrl.parse(f"modbus+tcp://127.0.0.1:{port}?unit=1&map=eastron-sdm120")
        with pytest.raises(ModbusConnectionLost) as caught:
            run(read_modbus_meter(url, "M1", timeout=2))
    assert caught.value.retryable


def test_non_modbus_url_and_unknown_quantity_fail_before_any_io() -> None:
    with pytest.raises(MapError, match="not a Modbus meter URL"):
        run(read_modbus_meter(MeterUrl.parse("dlms+tcp://127.0.0.1:4059?client=16&server=1"), "M1"))
    url = MeterUrl.parse("modbus+tcp://127.0.0.1:1?unit=1&map=eastron-sdm120")
    with pytest.raises(MapError, match="no entry for quantity"):
        run(read_modbus_meter(url, "M1", quantities=["1.0.99.1.0.255"]))


def test_nan_and_out_of_range_values_are_flagged_and_good_ones_kept(tmp_path: Path) -> None:
    map_path = tmp_path / "odd-meter.toml"
    map_path.write_text("""
name = "odd-meter"
title = "a meter serving a NaN"
manufacturer = "test"
manual = "none"
numbering = "wire"
function = "holding"
word_order = "big"

[[register]]
name = "energy"
quantity = "1.0.1.8.0.255"
address = 0
manual_address = 0
type = "f32"
unit = "Wh"
scale = 3
resolution = 0
source = "test"

[[register]]
name = "voltage"
quantity = "1.0.32.7.0.255"
address = 2
manual_address = 2
type = "f32"
unit = "V"
resolution = -1
max = "300"
source = "test"

[[register]]
name = "current"
quantity = "1.0.31.7.0.255"
address = 4
manual_address = 4
type = "f32"
unit = "A"
resolution = -2
source = "test"
""", encoding="utf-8")

    async def scenario() -> None:
        device = SimDevice(id=1, simdata=[SimData(0, values=[12.5, 400.0, float("nan")],
                                                  datatype=DataType.FLOAT32)])
        server = ModbusTcpServer(device, address=("127.0.0.1", 0))
        await server.serve_forever(background=True)
        try:
            port = server.transport.sockets[0].getsockname()[1]
            url = MeterUrl.parse(f"modbus+tcp://127.0.0.1:{port}?unit=1&map={map_path}")
            with pytest.raises(PartialRead) as caught:
                await read_modbus_meter(url, "M1")
        finally:
            await server.shutdown()
        error = caught.value
        assert isinstance(error, BadValue) and not error.retryable
        assert [(r.quantity, r.value, r.scale) for r in error.readings] == [("1.0.1.8.0.255", 12500, 0)]
        assert {b.entry.name for b in error.bad} == {"voltage", "current"}
        assert "400.0 V is above the declared maximum 300" in str(error) and "decodes to nan" in str(error)

    run(scenario())
