"""RTU: over a pseudo-terminal pair (a serial line) and through an RTU-over-TCP gateway."""

from __future__ import annotations

import asyncio

import pytest

from core.clock import VirtualClock
from core.meter_url import MeterUrl
from core.obis import ACTIVE_IMPORT_TOTAL
from protocols.modbus.client import read_modbus_meter
from protocols.modbus.errors import (
    LineSettingsError,
    MapMismatch,
    ModbusConnectionLost,
    ModbusCrcError,
    ModbusTimeout,
)
from protocols.modbus.simulator import ModbusFleetSimulator
from protocols.modbus.transport import line_lock

from .conftest import run


def test_read_over_a_serial_line_on_a_pty(clock: VirtualClock) -> None:
    async def scenario() -> None:
        async with ModbusFleetSimulator(meters=3, map_name="schneider-iem3000", clock=clock,
                                        transport="serial") as fleet:
            assert fleet.device_path and fleet.device_path.startswith("/dev/")
            meter = fleet.meters[2]
            url = MeterUrl.parse(meter.url)
            assert (url.scheme, url.device, url.int_param("unit", 0)) == ("modbus+rtu", fleet.device_path, 3)
            readings = await read_modbus_meter(url, meter.meter_id, clock=clock, timeout=3)
            energy = next(r for r in readings if r.quantity == ACTIVE_IMPORT_TOTAL)
            assert energy.value == fleet.register_wh(meter.meter_id)

    run(scenario())


def test_meters_on_one_line_are_read_one_request_at_a_time(clock: VirtualClock) -> None:
    async def scenario() -> None:
        async with ModbusFleetSimulator(meters=4, map_name="eastron-sdm630", clock=clock,
                                        transport="serial") as fleet:
            urls = [MeterUrl.parse(m.url) for m in fleet.meters]
            assert len({id(line_lock(u)) for u in urls}) == 1  # one lock for the whole line
            # started together; without the line lock their frames would collide on the pty
            results = await asyncio.gather(*(
                read_modbus_meter(u, m.meter_id, clock=clock, timeout=3) for u, m in zip(urls, fleet.meters,
                                                                                       strict=True)))
            for meter, readings in zip(fleet.meters, results, strict=True):
                energy = next(r for r in readings if r.quantity == ACTIVE_IMPORT_TOTAL)
                assert abs(energy.value * 10 - fleet.register_wh(meter.meter_id)) <= 10

    run(scenario())


def test_tcp_meters_share_no_lock_and_gateway_meters_share_one() -> None:
    async def scenario() -> None:
        tcp = [MeterUrl.parse(f"modbus+tcp://127.0.0.1:{p}?unit=1&map=eastron-sdm120") for p in (502, 503)]
        assert all(line_lock(url) is None for url in tcp)
        gateway = [MeterUrl.parse(f"modbus+rtu+tcp://10.0.0.9:4001?unit={unit}&map=eastron-sdm120")
                   for unit in (1, 2)]
        other = MeterUrl.parse("modbus+rtu+tcp://10.0.0.9:4002?unit=1&map=eastron-sdm120")
        assert line_lock(gateway[0]) is line_lock(gateway[1]) is not line_lock(other)

    run(scenario())


def test_missing_serial_device_and_bad_line_settings_are_clear_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    missing = MeterUrl.parse(f"modbus+rtu://{tmp_path}/ttyUSB9?baud=9600&unit=1&map=eastron-sdm120")
    with pytest.raises(ModbusConnectionLost) as caught:
        run(read_modbus_meter(missing, "M1", timeout=1))
    assert caught.value.retryable and "ttyUSB9" in str(caught.value)
    odd = MeterUrl.parse("modbus+rtu:///dev/ttyUSB0?baud=9600&parity=X&stopbits=3&unit=1&map=eastron-sdm120")
    with pytest.raises(LineSettingsError, match="parity 'X' is not N, E or O; stopbits 3 is not 1 or 2"):
        run(read_modbus_meter(odd, "M1", timeout=1))


def test_crc_errors_on_the_line_are_retryable(clock: VirtualClock) -> None:
    async def scenario() -> None:
        async with ModbusFleetSimulator(meters=1, clock=clock, transport="serial", faults=["crc"]) as fleet:
            with pytest.raises(ModbusCrcError) as caught:
                await read_modbus_meter(MeterUrl.parse(fleet.meters[0].url), "M1", clock=clock, timeout=1.0)
            assert caught.value.retryable and "CRC" in str(caught.value)

    run(scenario())


def test_rtu_over_tcp_gateway(clock: VirtualClock) -> None:
    async def scenario() -> None:
        async with ModbusFleetSimulator(meters=4, map_name="eastron-sdm120", clock=clock, transport="rtu+tcp",
                                        faults=["crc@0.5"]) as fleet:
            urls = [MeterUrl.parse(m.url) for m in fleet.meters]
            assert {u.scheme for u in urls} == {"modbus+rtu+tcp"} and len({u.line for u in urls}) == 1
            outcomes = await asyncio.gather(
                *(read_modbus_meter(u, m.meter_id, clock=clock, timeout=1.0) for u, m in
                  zip(urls, fleet.meters, strict=True)),
                return_exceptions=True)
            faulty = {m.meter_id for m in fleet.meters if m.faults}
            assert 0 < len(faulty) < len(fleet.meters)
            for meter, outcome in zip(fleet.meters, outcomes, strict=True):
                if meter.meter_id in faulty:
                    assert isinstance(outcome, ModbusCrcError)
                else:
                    assert isinstance(outcome, list) and len(outcome) == 13

    run(scenario())


def test_unit_missing_on_the_line_times_out_and_wrong_map_is_refused(clock: VirtualClock) -> None:
    async def scenario() -> None:
        async with ModbusFleetSimulator(meters=1, clock=clock, transport="rtu+tcp") as fleet:
            url = MeterUrl.parse(fleet.meters[0].url)
            absent = MeterUrl(url.scheme, url.host, url.port, None, {**url.params, "unit": "9"})
            with pytest.raises(ModbusTimeout):
                await read_modbus_meter(absent, "M9", clock=clock, timeout=0.3)
            wrong = MeterUrl(url.scheme, url.host, url.port, None, {**url.params, "map": "schneider-iem3000"})
            with pytest.raises(MapMismatch):
                await read_modbus_meter(wrong, "M1", clock=clock, timeout=2)

    run(scenario())
