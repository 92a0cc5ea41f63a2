"""The simulated fleet: deterministic from its seed, a valid fleet file, faults where asked."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from core.clock import VirtualClock
from core.fleet import CUSTOMER_CODE, FLEET_COLUMNS, FleetRow
from core.meter_url import MeterUrl
from core.obis import ACTIVE_IMPORT_TOTAL
from protocols.modbus.client import read_modbus_meter
from protocols.modbus.errors import ModbusError
from protocols.modbus.faults import FaultKind
from protocols.modbus.simulator import ModbusFleetSimulator

from .conftest import run


def _describe(seed: int, meters: int = 60) -> list[tuple[str, str, str, str, str]]:
    async def scenario() -> list[tuple[str, str, str, str, str]]:
        async with ModbusFleetSimulator(meters=meters, seed=seed, faults=["no-answer@0.2"]) as fleet:
            return [(m.meter_id, m.customer_code, m.tariff_class, m.households,
                     ",".join(f.kind for f in m.faults)) for m in fleet.meters]
    return run(scenario())


def test_same_seed_same_fleet_and_another_seed_another() -> None:
    first, again, other = _describe(7), _describe(7), _describe(8)
    assert first == again
    assert [row[1] for row in first] != [row[1] for row in other]
    codes = [row[1] for row in first]
    assert len(set(codes)) == len(codes) and all(CUSTOMER_CODE.match(c) for c in codes)
    assert {row[2] for row in first} == {"residential", "business"}  # a few business customers
    affected = sum(1 for row in first if row[4] == "no-answer")
    assert 0 < affected < len(first)  # about a fifth of the meters


def test_fleet_file_has_the_registry_columns_and_every_row_validates(
    tmp_path: Path, clock: VirtualClock
) -> None:
    async def scenario() -> Path:
        async with ModbusFleetSimulator(meters=12, map_name="eastron-sdm120", clock=clock) as fleet:
            return fleet.write_fleet_file(tmp_path / "fleet" / "modbus.csv")

    path = run(scenario())
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == FLEET_COLUMNS and len(rows) == 12
    parsed = [FleetRow.model_validate({k: v for k, v in row.items() if v != ""}) for row in rows]
    assert {p.route for p in parsed} == {"R01", "R02", "R03", "R04", "R05"}
    assert {p.model for p in parsed} == {"eastron-sdm120"} and {p.read for p in parsed} == {"registers"}
    assert all(p.meter_url.params["map"] == "eastron-sdm120" for p in parsed)


def test_wrap_fault_rolls_the_energy_register_over(clock: VirtualClock) -> None:
    async def scenario() -> None:
        async with ModbusFleetSimulator(meters=1, map_name="schneider-iem3000", clock=clock,
                                        faults=["wrap"]) as fleet:
            meter = fleet.meters[0]
            url = MeterUrl.parse(meter.url)
            energy = [ACTIVE_IMPORT_TOTAL]
            before = (await read_modbus_meter(url, meter.meter_id, clock=clock, quantities=energy))[0]
            clock.advance(dt.timedelta(days=2))  # draws well over the 1 kWh left before the wrap point
            after = (await read_modbus_meter(url, meter.meter_id, clock=clock, quantities=energy))[0]
            assert after.value < before.value
            assert after.value == fleet.register_wh(meter.meter_id) % (fleet.register_wh(
                meter.meter_id, clock.now() - dt.timedelta(days=2)) + 1000)

    run(scenario())


def test_fault_rate_fails_some_requests_only(clock: VirtualClock) -> None:
    async def scenario() -> None:
        async with ModbusFleetSimulator(meters=1, clock=clock, faults=["exception:4%0.5"]) as fleet:
            url = MeterUrl.parse(fleet.meters[0].url)
            outcomes = []
            for _ in range(12):
                try:
                    await read_modbus_meter(url, "M1", clock=clock, quantities=[ACTIVE_IMPORT_TOTAL])
                    outcomes.append("ok")
                except ModbusError:
                    outcomes.append("failed")
            assert set(outcomes) == {"ok", "failed"}

    run(scenario())


def test_invalid_options_are_refused_up_front() -> None:
    with pytest.raises(ModbusError, match="needs an RTU transport"):
        ModbusFleetSimulator(meters=1, faults=["crc"])
    with pytest.raises(ModbusError, match="at most 247"):
        ModbusFleetSimulator(meters=300, transport="serial")
    with pytest.raises(ModbusError, match="not a Modbus exception code"):
        ModbusFleetSimulator(meters=1, faults=["exception:99"])
    assert ModbusFleetSimulator(meters=1, faults=["wrap:5"]).faults[0].kind is FaultKind.WRAP
