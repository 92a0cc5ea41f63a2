"""A manufacturer's documented Modbus RTU exchange, byte for byte, over a real pty line.

KBR multicomp F144 manual (25359_EDEBDA0279-2320-1_EN, V2.01, p. 62, "Example Modbus RTU"):
request  01 04 00 01 00 06 21 C8                 read 6 input registers from wire address 1
response 01 04 0C 43 6B 5A B4 42 DC 67 20 42 48 0C 63 AF 7C
         -> 235.35 V, 110.20 A, 50.012 Hz (three IEEE 754 floats, high word first)
The same layout (f32, most significant word first, function 04) is what Eastron documents.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.register_message import ReadInputRegistersRequest
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from core.meter_url import MeterUrl
from protocols.modbus.client import read_modbus_meter
from protocols.modbus.nullmodem import PtyNullModem

from .conftest import run

REQUEST = bytes.fromhex("01 04 00 01 00 06 21 C8")
RESPONSE = bytes.fromhex("01 04 0C 43 6B 5A B4 42 DC 67 20 42 48 0C 63 AF 7C")
MAP = """
name = "kbr-example"
title = "the three values of the documented example"
manufacturer = "KBR"
manual = "KBR multicomp F144 manual V2.01, p. 62"
numbering = "one-based"
function = "input"
word_order = "big"

[[register]]
name = "voltage"
quantity = "1.0.32.7.0.255"
address = 1
manual_address = 2
type = "f32"
unit = "V"
resolution = -2
source = "p. 62"

[[register]]
name = "current"
quantity = "1.0.31.7.0.255"
address = 3
manual_address = 4
type = "f32"
unit = "A"
resolution = -2
source = "p. 62"

[[register]]
name = "frequency"
quantity = "1.0.14.7.0.255"
address = 5
manual_address = 6
type = "f32"
unit = "Hz"
resolution = -3
source = "p. 62"
"""


def test_request_frame_matches_the_manual() -> None:
    framer = FramerRTU(DecodePDU(False))
    assert framer.buildFrame(ReadInputRegistersRequest(address=1, count=6, dev_id=1)) == REQUEST


def test_documented_exchange_on_a_serial_line(tmp_path: Path) -> None:
    map_path = tmp_path / "kbr-example.toml"
    map_path.write_text(MAP, encoding="utf-8")
    registers = [int.from_bytes(RESPONSE[3 + i:5 + i], "big") for i in range(0, 12, 2)]
    wire: list[tuple[bool, bytes]] = []

    def record(sending: bool, data: bytes) -> bytes:
        wire.append((sending, data))
        return data

    async def scenario() -> list[tuple[str, Decimal]]:
        async with PtyNullModem() as line:
            device = SimDevice(id=1, simdata=([SimData(0, values=[False] * 16, datatype=DataType.BITS)],
                                              [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
                                              [SimData(0, datatype=DataType.INVALID)],
                                              [SimData(1, values=registers, datatype=DataType.REGISTERS)]))
            server = ModbusSerialServer(device, port=line.server_path, baudrate=9600, trace_packet=record)
            await server.serve_forever(background=True)
            try:
                url = MeterUrl.parse(f"modbus+rtu://{line.client_path}?baud=9600&unit=1&map={map_path}")
                readings = await read_modbus_meter(url, "KBR-1", timeout=3)
            finally:
                await server.shutdown()
        return [(r.quantity, r.decimal) for r in readings]

    values = dict(run(scenario()))
    received = b"".join(data for sending, data in wire if not sending)
    sent = b"".join(data for sending, data in wire if sending)
    assert received.endswith(REQUEST)  # the client asked exactly as the manual shows
    assert sent == RESPONSE  # and the answer on the line is the manual's, CRC included
    assert values == {"1.0.32.7.0.255": Decimal("235.35"), "1.0.31.7.0.255": Decimal("110.20"),
                      "1.0.14.7.0.255": Decimal("50.012")}
