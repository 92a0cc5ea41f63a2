"""Register read responses keep the wire bytes: checked against a hand-made Modbus TCP server."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from core.meter_url import MeterUrl
from protocols.modbus.errors import ModbusError, ModbusTimeout
from protocols.modbus.maps import Function
from protocols.modbus.plan import ReadBlock
from protocols.modbus.responses import CLIENT_DECODER, RawHoldingResponse, RawInputResponse
from protocols.modbus.transport import open_session

from .conftest import run

Answer = Callable[[int, int, int, int], bytes]  # (function, address, count, unit) -> PDU after the unit


@asynccontextmanager
async def fake_meter(answer: Answer) -> AsyncIterator[int]:
    """A Modbus TCP server that answers each request with `answer`'s PDU; yields its port."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(7)
                tid, _, length, unit = struct.unpack(">HHHB", header)
                function, address, count = struct.unpack(">BHH", await reader.readexactly(length - 1))
                pdu = answer(function, address, count, unit)
                writer.write(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)
                await writer.drain()
        except asyncio.IncompleteReadError:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def _url(port: int) -> MeterUrl:
    return MeterUrl.parse(f"modbus+tcp://127.0.0.1:{port}?unit=7&map=eastron-sdm630")


def _block(function: Function, address: int, count: int) -> ReadBlock:
    return ReadBlock(function, address, count, ())


def test_the_payload_is_the_registers_bytes_as_sent() -> None:
    # each register answers its own address, so a shifted or reordered payload shows
    def answer(function: int, address: int, count: int, unit: int) -> bytes:
        words = [(function << 12) + address + i for i in range(count)]
        return struct.pack(f">BB{count}H", function, 2 * count, *words)

    async def scenario() -> None:
        async with fake_meter(answer) as port, open_session(_url(port), timeout=2) as session:
            holding = await session.read(_block(Function.HOLDING, 0x100, 3), map_name="m")
            inputs = await session.read(_block(Function.INPUT, 0x48, 2), map_name="m")
        assert holding == bytes.fromhex("3100 3101 3102")
        assert inputs == bytes.fromhex("4048 4049")

    run(scenario())


def test_an_answer_of_another_length_is_refused() -> None:
    def answer(function: int, address: int, count: int, unit: int) -> bytes:
        return struct.pack(">BB4H", function, 8, 1, 2, 3, 4)  # always four registers

    async def scenario() -> None:
        async with fake_meter(answer) as port, open_session(_url(port), timeout=2) as session:
            refused = r"asked for 2 registers of input registers 72\.\.73, got 4"
            with pytest.raises(ModbusError, match=refused):
                await session.read(_block(Function.INPUT, 72, 2), map_name="m")

    run(scenario())


@pytest.mark.parametrize("count_byte", [5, 9])  # odd, and more bytes than the frame carries
def test_a_byte_count_that_does_not_fit_is_never_decoded(count_byte: int) -> None:
    def answer(function: int, address: int, count: int, unit: int) -> bytes:
        return struct.pack(">BB3H", function, count_byte, 1, 2, 3)

    async def scenario() -> None:
        async with fake_meter(answer) as port, open_session(_url(port), timeout=0.5) as session:
            # pymodbus drops a frame it cannot decode; the request then times out (retryable)
            with pytest.raises(ModbusTimeout):
                await session.read(_block(Function.INPUT, 0, 3), map_name="m")

    run(scenario())


def test_the_shared_decoder_makes_raw_responses_and_keeps_exceptions() -> None:
    holding = CLIENT_DECODER.decode(bytes.fromhex("03 04 43660000"))
    inputs = CLIENT_DECODER.decode(bytes.fromhex("04 02 00ff"))
    assert isinstance(holding, RawHoldingResponse) and holding.payload == bytes.fromhex("43660000")
    assert isinstance(inputs, RawInputResponse) and inputs.payload == b"\x00\xff"
    assert "registers=2" in str(holding)
    refused = CLIENT_DECODER.decode(bytes.fromhex("84 02"))
    assert refused is not None and refused.isError() and refused.exception_code == 2
