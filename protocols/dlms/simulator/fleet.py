"""A fleet of simulated DLMS meters on loopback TCP (wrapper or HDLC) or on pseudo-terminals.

    async with DlmsFleetSimulator(meters=3, framing="hdlc", clock=clock, auth="lls") as fleet:
        for meter in fleet.meters: ...   # meter_id, customer_code, url, secrets
        fleet.write_fleet_file(path)

Each meter listens on its own port (`port + i`, or an ephemeral port with port=0). With
`pty=True` each meter is HDLC on a pseudo-terminal instead, at `dlms+hdlc+serial://<slave>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import os
import tty
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from core.clock import Clock, SystemClock
from core.fleet import FLEET_COLUMNS
from protocols.dlms import hdlc
from protocols.dlms.ciphering import Keys
from protocols.dlms.errors import ApduError, DlmsLocalError, DlmsRemoteError, FrameError
from protocols.dlms.serial_line import pipe_streams
from protocols.dlms.simulator.faults import Faults
from protocols.dlms.simulator.meter import SimulatedMeter
from protocols.dlms.simulator.server import PUBLIC_CLIENT, ServerAssociation
from protocols.dlms.wrapper import WrapperDecoder, WrapperFrame

MANAGEMENT_CLIENT = 1


@dataclass(frozen=True)
class SimulatedMeterInfo:
    meter_id: str
    customer_code: str
    url: str
    key_id: str | None
    secrets: dict[str, bytes] = field(repr=False)  # key reference -> secret, for tests and demos only


def _secret(seed: int, meter_id: str, size: int) -> bytes:
    return hashlib.blake2b(f"{seed}|{meter_id}|key".encode(), digest_size=size).digest()


class _Connection:
    """One client connection to one meter: framing in, association, framing out."""

    def __init__(self, meter: SimulatedMeter, info: SimulatedMeterInfo, fleet: DlmsFleetSimulator) -> None:
        self.meter, self.info, self.fleet = meter, info, fleet
        secret = info.secrets.get(info.key_id or "", b"")
        keys = Keys(secret[:16], secret[16:]) if fleet.auth == "hls-gmac" else None
        self.association = ServerAssociation(
            meter, auth=fleet.auth, password=secret if fleet.auth == "lls" else b"", keys=keys
        )

    async def _answer(self, request: bytes) -> bytes | None:
        faults = self.meter.faults
        if faults.no_answer:
            return None
        if faults.latency:
            await asyncio.sleep(faults.latency)
        before = self.association.blocks_served
        answer = self.association.handle(request)
        if (
            faults.drop_block
            and self.association.blocks_served >= 2
            and before < self.association.blocks_served
        ):
            raise ConnectionResetError("fault: dropped in the middle of a block transfer")
        return answer

    async def serve_wrapper(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = WrapperDecoder()
        while data := await reader.read(65536):
            for frame in decoder.feed(data):
                self.association.client_sap = frame.source
                answer = await self._answer(frame.apdu)
                if answer is None:
                    continue
                out = WrapperFrame(frame.destination, frame.source, answer).to_bytes()
                if self.meter.faults.bad_checksum:
                    out = b"\x00\x02" + out[2:]  # a header that no longer says version 1
                writer.write(out)
                await writer.drain()

    async def serve_hdlc(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = hdlc.HdlcDecoder()
        me: hdlc.HdlcAddress | None = None
        client = hdlc.HdlcAddress(PUBLIC_CLIENT)
        params = hdlc.HdlcParameters()
        send_seq = recv_seq = 0
        incoming = bytearray()
        outgoing: list[bytes] = []

        async def send(control: int, info: bytes = b"", segmented: bool = False) -> None:
            assert me is not None
            out = hdlc.HdlcFrame(client, me, control, info, segmented).to_bytes()
            if self.meter.faults.bad_checksum:
                out = out[:-3] + bytes(((out[-3] ^ 0xFF),)) + out[-2:]
            writer.write(out)
            await writer.drain()

        async def send_next_segment() -> None:
            nonlocal send_seq
            chunk = outgoing.pop(0)
            await send(hdlc.i_control(send_seq, recv_seq), chunk, segmented=bool(outgoing))
            send_seq = (send_seq + 1) & 7

        while data := await reader.read(65536):
            for frame in decoder.feed(data):
                if me is None:
                    me = frame.destination
                if frame.destination != me:
                    continue  # another station on the bus
                client = frame.source
                if frame.control == hdlc.SNRM:
                    if self.meter.faults.no_answer:
                        continue
                    asked = hdlc.HdlcParameters.from_bytes(frame.info)
                    params = hdlc.HdlcParameters(
                        min(asked.max_info_rx, 512), min(asked.max_info_tx, 512), 1, 1
                    )
                    send_seq = recv_seq = 0
                    incoming.clear()
                    outgoing.clear()
                    self.association = _Connection(self.meter, self.info, self.fleet).association
                    await send(hdlc.UA, params.to_bytes())
                elif frame.control == hdlc.DISC:
                    await send(hdlc.UA)
                elif hdlc.is_receive_ready(frame.control) and outgoing:
                    await send_next_segment()
                elif hdlc.is_information(frame.control):
                    recv_seq = (frame.send_seq + 1) & 7
                    incoming += frame.info
                    if frame.segmented:
                        await send(hdlc.rr_control(recv_seq))
                        continue
                    request = bytes(incoming[3:]) if incoming[:3] == hdlc.LLC_REQUEST else b""
                    incoming.clear()
                    self.association.client_sap = client.logical
                    answer = await self._answer(request)
                    if answer is None:
                        continue
                    payload = hdlc.LLC_RESPONSE + answer
                    size = params.max_info_tx
                    outgoing = [payload[i : i + size] for i in range(0, len(payload), size)]
                    await send_next_segment()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.fleet.framing == "wrapper":
                await self.serve_wrapper(reader, writer)
            else:
                await self.serve_hdlc(reader, writer)
        except (ConnectionError, OSError, FrameError, ApduError, DlmsRemoteError):
            pass  # the simulated meter hangs up, as a real one would
        finally:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()


class DlmsFleetSimulator:
    def __init__(
        self,
        meters: int = 1,
        *,
        framing: str = "wrapper",
        seed: int = 1,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | list[str] | None = None,
        auth: str = "none",
        pty: bool = False,
        first_meter: int = 1,
    ) -> None:
        if framing not in ("wrapper", "hdlc"):
            raise DlmsLocalError(f"framing {framing!r} is not wrapper or hdlc")
        if pty and framing != "hdlc":
            raise DlmsLocalError("a pseudo-terminal meter speaks HDLC; use framing='hdlc'")
        if auth not in ("none", "lls", "hls-gmac"):
            raise DlmsLocalError(f"auth {auth!r} is not none, lls or hls-gmac")
        self.count, self.framing, self.seed, self.auth = meters, framing, seed, auth
        self.clock: Clock = clock or SystemClock()
        self.host, self.port, self.pty = host, port, pty
        self.faults = faults if isinstance(faults, Faults) else Faults.parse(list(faults or []))
        self.first_meter = first_meter
        self.meters: list[SimulatedMeterInfo] = []
        self.simulated: dict[str, SimulatedMeter] = {}
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._ptys: list[tuple[int, int]] = []
        self._pty_writers: list[asyncio.StreamWriter] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    def _info(self, meter_id: str, index: int, location: str) -> SimulatedMeterInfo:
        client = PUBLIC_CLIENT if self.auth == "none" else MANAGEMENT_CLIENT
        params = f"client={client}&server=1"
        if self.framing == "hdlc":
            params += "&physical=17"
        secrets: dict[str, bytes] = {}
        key_id = None
        if self.auth != "none":
            key_id = f"meter-keys:{meter_id}"
            params += f"&auth={self.auth}&key={key_id}"
            secrets[key_id] = _secret(self.seed, meter_id, 32 if self.auth == "hls-gmac" else 8)
        scheme = (
            "dlms+tcp" if self.framing == "wrapper" else ("dlms+hdlc+serial" if self.pty else "dlms+hdlc+tcp")
        )
        customer = f"PD{1 + index % 30:02d}{self.seed % 1000:03d}{index:06d}"
        return SimulatedMeterInfo(meter_id, customer, f"{scheme}://{location}?{params}", key_id, secrets)

    async def __aenter__(self) -> DlmsFleetSimulator:
        try:
            for index in range(self.first_meter, self.first_meter + self.count):
                meter_id = f"SIM{index:06d}"
                meter = SimulatedMeter(meter_id, self.clock, self.seed, self.faults)
                self.simulated[meter_id] = meter
                if self.pty:
                    location = await self._open_pty(meter, meter_id, index)
                else:
                    location = await self._listen(meter, meter_id, index)
                self.meters.append(self._info(meter_id, index, location))
        except BaseException:
            await self.aclose()
            raise
        return self

    async def _listen(self, meter: SimulatedMeter, meter_id: str, index: int) -> str:
        holder: list[SimulatedMeterInfo] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.add(writer)
            task = asyncio.current_task()
            if task is not None:
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)
            try:
                await _Connection(meter, holder[0], self).serve(reader, writer)
            finally:
                self._writers.discard(writer)

        port = self.port + index - self.first_meter if self.port else 0
        try:
            server = await asyncio.start_server(handle, self.host, port, backlog=4096)
        except OSError as exc:
            raise DlmsLocalError(
                f"simulated meter {meter_id} cannot listen on {self.host}:{port}: {exc.strerror or exc}",
                hint="choose another --port (meter i listens on port + i), or --port 0 for free ports",
            ) from None
        self._servers.append(server)
        bound = server.sockets[0].getsockname()[1]
        holder.append(self._info(meter_id, index, f"{self.host}:{bound}"))
        return f"{self.host}:{bound}"

    async def _open_pty(self, meter: SimulatedMeter, meter_id: str, index: int) -> str:
        master, slave = os.openpty()
        tty.setraw(slave)
        self._ptys.append((master, slave))
        path = os.ttyname(slave)
        info = self._info(meter_id, index, path)
        reader, writer = await pipe_streams(master)

        async def serve_forever() -> None:
            # A serial line has no connections: one link after another on the same wire.
            with contextlib.suppress(ConnectionError, OSError):
                await _Connection(meter, info, self).serve_hdlc(reader, writer)

        task = asyncio.create_task(serve_forever())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._pty_writers.append(writer)
        return path

    async def aclose(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # ends each connection's read at once, without cancelling it
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=5)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for server in self._servers:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await server.wait_closed()
        for writer in self._pty_writers:
            writer.close()
        self._pty_writers.clear()
        for master, slave in self._ptys:
            for fd in (master, slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._servers.clear()
        self._ptys.clear()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def secrets(self, key_id: str) -> bytes:
        """The key store of this fleet (tests and demos): key reference -> secret."""
        for meter in self.meters:
            if key_id in meter.secrets:
                return meter.secrets[key_id]
        raise KeyError(key_id)

    def write_key_file(self, path: Path) -> Path:
        """The head-end's key file (TOML, mode 0600) for this fleet's meters: test and demo keys only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for meter in self.meters:
            if meter.key_id is None:
                continue
            secret = meter.secrets[meter.key_id]
            lines.append(f"[{meter.key_id.replace(':', '.', 1)}]")
            if self.auth == "lls":
                lines.append(f'password_hex = "{secret.hex()}"')
            else:
                lines.append(f'ekey = "{secret[:16].hex()}"')
                lines.append(f'akey = "{secret[16:].hex()}"')
            lines.append("")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write("\n".join(lines))
        os.chmod(path, 0o600)
        return path

    def write_fleet_file(self, path: Path) -> Path:
        """The registry import file (core.fleet.FLEET_COLUMNS), CSV."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(FLEET_COLUMNS))
            writer.writeheader()
            for meter in self.meters:
                writer.writerow(
                    {
                        "meter_id": meter.meter_id,
                        "customer_code": meter.customer_code,
                        "url": meter.url,
                        "model": "generic",
                        "route": "sim",
                        "installed_on": "",
                        "removed_on": "",
                        "ct_ratio": 1,
                        "vt_ratio": 1,
                        "read": "registers,profile,clock",
                        "households": "1",
                        "tariff_class": "residential",
                    }
                )
        return path
