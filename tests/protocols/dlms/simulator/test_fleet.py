from __future__ import annotations

import asyncio
import csv
import datetime as dt
from pathlib import Path

import pytest

from core.clock import VirtualClock
from core.fleet import FLEET_COLUMNS, FleetRow
from protocols.dlms.errors import DlmsLocalError
from protocols.dlms.simulator.fleet import DlmsFleetSimulator

START = dt.datetime(2026, 3, 10, 5, 0, tzinfo=dt.UTC)


def test_fleet_file_is_the_registry_import_format(tmp_path: Path) -> None:
    async def body() -> Path:
        async with DlmsFleetSimulator(3, framing="hdlc", clock=VirtualClock(START), auth="lls") as fleet:
            assert len({m.url for m in fleet.meters}) == 3
            assert all(fleet.secrets(m.key_id or "") for m in fleet.meters)
            return fleet.write_fleet_file(tmp_path / "fleet.csv")

    path = asyncio.run(body())
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == FLEET_COLUMNS
    parsed = [FleetRow(**{k: v for k, v in row.items() if v != ""}) for row in rows]
    assert [p.meter_url.scheme for p in parsed] == ["dlms+hdlc+tcp"] * 3
    assert all(p.meter_url.params["auth"] == "lls" and "key" in p.meter_url.params for p in parsed)
    assert all(p.customer_code and len(p.customer_code) == 13 for p in parsed)


def test_secrets_never_appear_in_the_fleet_file_or_reprs(tmp_path: Path) -> None:
    async def body() -> tuple[Path, list[bytes], str]:
        async with DlmsFleetSimulator(2, clock=VirtualClock(START), auth="hls-gmac") as fleet:
            secrets = [fleet.secrets(m.key_id or "") for m in fleet.meters]
            return fleet.write_fleet_file(tmp_path / "f.csv"), secrets, repr(fleet.meters)

    path, secrets, shown = asyncio.run(body())
    text = path.read_text().lower()
    assert all(s.hex() not in text and s.hex() not in shown and repr(s) not in shown for s in secrets)


def test_fixed_port_numbering(tmp_path: Path) -> None:
    async def body() -> list[str]:
        async with DlmsFleetSimulator(1, clock=VirtualClock(START), port=0) as fleet:
            return [m.url for m in fleet.meters]

    assert asyncio.run(body())[0].startswith("dlms+tcp://127.0.0.1:")


def test_a_busy_port_is_a_message_with_a_hint() -> None:
    async def body() -> None:
        async with DlmsFleetSimulator(1, clock=VirtualClock(START)) as first:
            port = int(first.meters[0].url.split(":")[2].split("?")[0])
            with pytest.raises(DlmsLocalError, match=str(port)) as caught:
                async with DlmsFleetSimulator(1, clock=VirtualClock(START), port=port):
                    pass
            assert caught.value.hint and "--port" in caught.value.hint

    asyncio.run(body())
