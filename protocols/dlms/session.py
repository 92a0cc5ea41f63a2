"""A meter session: associate, read clock, registers, profiles and events, set the clock, release.

    async with open_session(url, secrets=keys.get, counters=store) as session:
        clock = await session.read_clock()
        readings = await session.read_registers(["1.0.1.8.0.255"])

Release (RLRQ) and disconnect happen on the way out whatever happened inside.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import operator
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import compress
from typing import TypeVar

from core.clock import Clock
from core.meter_url import MeterUrl
from core.obis import Obis, canonical
from core.reading import SCALE_RANGE, STATUS_CLOCK_INVALID, Reading, ReadingColumns
from protocols.dlms import apdu, axdr
from protocols.dlms.apdu import AttributeRef
from protocols.dlms.association import ClientAssociation
from protocols.dlms.ciphering import Keys
from protocols.dlms.cosem_time import CLOCK_STATUS_INVALID, CosemDateTime
from protocols.dlms.counters import InvocationCounterStore, MemoryCounterStore
from protocols.dlms.errors import AccessDenied, ApduError, DlmsLocalError, DlmsRemoteError, IncompleteProfile
from protocols.dlms.reading_columns import ColumnsBuilder
from protocols.dlms.settings import DlmsMeterSettings
from protocols.dlms.transport import Transport, open_transport
from protocols.dlms.units import unit_name
from protocols.errors import BadValue, ConnectionLost, MeterTimeout, RemoteProtocolError

CLOCK_CLASS, REGISTER_CLASS, EXTENDED_REGISTER_CLASS, PROFILE_CLASS, DATA_CLASS = 8, 3, 4, 7, 1
EVENT_CODE = "0.0.96.11.0.255"
SHIFT_TIME_METHOD = 6
MAX_SHIFT_S = 900
MAX_INTERVAL_S = 3600  # longest capture period whose row differences are emitted as D=29 deltas
PROCESS_COUNTERS = MemoryCounterStore()
T = TypeVar("T")
LIST_CHUNK = 24  # attributes per GET-WITH-LIST at most; fewer if the meter's PDU is small


@dataclass(frozen=True, slots=True)
class MeterClock:
    meter_time: dt.datetime  # the meter's clock, UTC
    deviation: int | None  # minutes local -> UTC as the meter reports it (None: unspecified)
    status: int  # COSEM clock status bits
    read_at: dt.datetime  # the head-end's time when the answer arrived, UTC

    @property
    def offset_seconds(self) -> float:
        """How far the meter is ahead of the head-end (negative: behind)."""
        return (self.meter_time - self.read_at).total_seconds()

    @property
    def valid(self) -> bool:
        return not self.status & CLOCK_STATUS_INVALID


@dataclass(frozen=True, slots=True)
class CaptureColumn:
    class_id: int
    obis: str
    attribute: int


STAMP_CACHE_SIZE = 1 << 16
# raw profile time stamp -> (UTC, clock status), per (deviation_inverted, unspecified_zone):
# a round reads the same interval ends from every meter, so each is decoded once.
_STAMPS: dict[tuple[bool, str], dict[bytes, tuple[dt.datetime, int]]] = {}


def _stamps_to_utc(raws: list[bytes], inverted: bool, zone: str) -> list[tuple[dt.datetime, int]]:
    cache = _STAMPS.setdefault((inverted, zone), {})
    found = list(map(cache.get, raws))
    if None in found:
        if len(cache) > STAMP_CACHE_SIZE:
            cache.clear()
        for index, raw in enumerate(raws):
            if found[index] is None:
                stamp = CosemDateTime.from_bytes(raw)
                found[index] = cache[raw] = (
                    stamp.to_utc(deviation_inverted=inverted, unspecified_zone=zone),
                    stamp.status,
                )
    return found  # type: ignore[return-value]


@functools.lru_cache(maxsize=4096)
def _obis(code: str) -> Obis:
    return Obis.parse(code)


@functools.lru_cache(maxsize=4096)
def register_class(obis: str) -> int:
    """Interface class usually holding a quantity: extended register for maximum demand, else register."""
    return EXTENDED_REGISTER_CLASS if _obis(obis).d == 6 else REGISTER_CLASS


@functools.lru_cache(maxsize=256)
def _range_target(clock: str) -> bytes:
    """The restricting object of a range read: the clock's time attribute (A-XDR capture object)."""
    return axdr.structure(
        [
            axdr.integer(axdr.LONG_UNSIGNED, CLOCK_CLASS),
            axdr.octets(_obis(clock).to_bytes()),
            axdr.integer(axdr.INTEGER, 2),
            axdr.integer(axdr.LONG_UNSIGNED, 0),
        ]
    )


@functools.lru_cache(maxsize=256)
def _profile_layout(response: bytes) -> tuple[tuple[CaptureColumn, ...], int] | None:
    """Capture objects and capture period from a GET-WITH-LIST answer, if it is the plain
    success it usually is; None sends the answer through the checks that name what is wrong."""
    try:
        items = apdu.parse_get_response(response).items
    except DlmsRemoteError:
        return None
    if len(items) != 2 or not isinstance(items[0], list) or type(items[1]) is not int:
        return None
    columns = []
    for item in items[0]:
        if not (
            isinstance(item, list)
            and len(item) == 4
            and type(item[0]) is int
            and isinstance(item[1], bytes)
            and len(item[1]) == 6
            and type(item[2]) is int
        ):
            return None
        columns.append(CaptureColumn(item[0], str(Obis.from_bytes(item[1])), item[2]))
    return tuple(columns), items[1]


def _scaled(value: axdr.DlmsValue, scaler: int, what: str) -> tuple[int, int]:
    """(value, scale) exactly: an integer keeps its digits, a float its shortest decimal."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ApduError(f"{what}: value {value!r} is not a number")
    if isinstance(value, int):
        return value, scaler
    # A float register: its shortest decimal, digits and exponent kept exactly.
    sign, digits, exponent = value.scaleb(scaler).normalize().as_tuple()
    if not isinstance(exponent, int):
        raise BadValue(f"{what}: value {value} is not a finite number")
    number = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    if exponent > SCALE_RANGE[1]:
        number, exponent = number * 10 ** (exponent - SCALE_RANGE[1]), SCALE_RANGE[1]
    if exponent < SCALE_RANGE[0]:
        raise BadValue(
            f"{what}: value {value} needs {-exponent} decimals, more than a reading keeps",
            hint="the meter reports more precision than the contract's scale range",
        )
    return number, exponent


def _gather(values: list[T], indexes: list[int]) -> list[T]:
    """values[i] for each i, in C (itemgetter) rather than a comprehension."""
    if len(indexes) > 1:
        return list(operator.itemgetter(*indexes)(values))
    return [values[i] for i in indexes]


def _difference(before: int, before_scale: int, after: int, after_scale: int) -> tuple[int, int]:
    """(after - before) as (value, scale) at the finer of the two scales, exactly."""
    scale = min(before_scale, after_scale)
    return after * 10 ** (after_scale - scale) - before * 10 ** (before_scale - scale), scale


def _scaler_unit(value: axdr.DlmsValue, what: str) -> tuple[int, str]:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)):
        raise ApduError(f"{what}: scaler_unit {value!r} is not a structure of two integers")
    scaler, unit = value
    assert isinstance(scaler, int) and isinstance(unit, int)
    return scaler, unit_name(unit)


class DlmsSession:
    def __init__(
        self,
        transport: Transport,
        association: ClientAssociation,
        settings: DlmsMeterSettings,
        where: str,
        *,
        meter_id: str = "",
        source: str = "",
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._transport = transport
        self._association = association
        self.settings = settings
        self.where = where
        self.meter_id = meter_id or where
        self.source = source
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._invoke = 0
        self._deviation: int | None = None
        self._scalers: dict[str, tuple[int, str]] = {}

    # --- plumbing -----------------------------------------------------------------------

    def _invoke_id(self) -> int:
        self._invoke = (self._invoke + 1) & 0x0F
        return self._invoke

    async def _exchange(self, plain: bytes) -> bytes:
        if len(plain) > self._association.server_max_pdu:
            raise DlmsLocalError(
                f"{self.where}: a request of {len(plain)} bytes exceeds the meter's "
                f"max PDU {self._association.server_max_pdu}"
            )
        answer = await self._transport.request(self._association.protect(plain))
        return self._association.unprotect(answer)

    async def get(self, ref: AttributeRef, access: bytes | None = None) -> bytes:
        """The raw A-XDR of one attribute, following block transfer to the last block."""
        self._association.require("get")
        if access is not None:
            self._association.require("selective_access")
        invoke = self._invoke_id()
        response = apdu.parse_get_response(await self._exchange(apdu.get_request(ref, invoke, access)))
        what = f"{self.where} {ref.obis} attribute {ref.attribute}"
        if response.block_number is None:
            return response.value_bytes(what)
        self._association.require("block_transfer_with_get_or_read")
        parts = [response.value_bytes(what)]
        expected = response.block_number
        while not response.last_block:
            response = apdu.parse_get_response(await self._exchange(apdu.get_next(expected, invoke)))
            if response.block_number != expected + 1:
                raise ApduError(f"{what}: block {response.block_number} arrived where {expected + 1} was due")
            expected += 1
            parts.append(response.value_bytes(what))
        return b"".join(parts)

    async def get_value(self, ref: AttributeRef) -> axdr.DlmsValue:
        return axdr.decode(await self.get(ref))

    def _with_list(self) -> bool:
        return self.settings.use_get_with_list and self._association.conformance.multiple_references

    def _list_items(self, response: apdu.GetResponse, count: int) -> list[axdr.DlmsValue | AccessDenied]:
        if len(response.items) != count:
            raise ApduError(f"{self.where}: GET-WITH-LIST of {count} got {len(response.items)} answers")
        return response.items

    async def get_many(self, refs: Sequence[AttributeRef]) -> list[axdr.DlmsValue | AccessDenied]:
        """Several attributes: GET-WITH-LIST when the meter granted it, else one GET each."""
        results: list[axdr.DlmsValue | AccessDenied] = []
        if self._with_list():
            # Each attribute descriptor takes 10 bytes of the request; keep inside the meter's PDU.
            size = max(1, min(LIST_CHUNK, (self._association.server_max_pdu - 16) // 10))
            for index in range(0, len(refs), size):
                chunk = refs[index : index + size]
                if len(chunk) == 1:
                    results.append(await self._get_or_denied(chunk[0]))
                    continue
                response = await self._exchange(apdu.get_with_list(chunk, self._invoke_id()))
                results += self._list_items(apdu.parse_get_response(response), len(chunk))
            return results
        for ref in refs:
            results.append(await self._get_or_denied(ref))
        return results

    async def _get_or_denied(self, ref: AttributeRef) -> axdr.DlmsValue | AccessDenied:
        try:
            return await self.get_value(ref)
        except AccessDenied as denied:
            return denied

    # --- reads --------------------------------------------------------------------------

    def _to_utc(self, raw: bytes) -> tuple[dt.datetime, int]:
        return _stamps_to_utc([raw], self.settings.deviation_inverted, self.settings.unspecified_zone)[0]

    def _range(self, start: dt.datetime, end: dt.datetime) -> bytes | None:
        """Selective access by range on the clock column, or None (the whole buffer, whose rows
        are then picked here by time) toward a meter that did not grant selective access."""
        if not self._association.conformance.selective_access:
            return None
        return apdu.range_descriptor(
            _range_target(self.settings.clock),
            CosemDateTime.from_utc(start, 0).to_bytes(),
            CosemDateTime.from_utc(end, 0).to_bytes(),
        )

    async def read_clock(self) -> MeterClock:
        value = await self.get_value(AttributeRef(CLOCK_CLASS, self.settings.clock, 2))
        read_at = self._now()
        if not isinstance(value, bytes):
            raise ApduError(
                f"{self.where}: clock time is {type(value).__name__}, not a date-time octet-string"
            )
        stamp = CosemDateTime.from_bytes(value)
        self._deviation = stamp.deviation
        meter_time = stamp.to_utc(
            deviation_inverted=self.settings.deviation_inverted,
            unspecified_zone=self.settings.unspecified_zone,
        )
        return MeterClock(meter_time, stamp.deviation, stamp.status, read_at)

    async def read_registers(self, quantities: Sequence[str]) -> list[Reading]:
        codes = [canonical(q) for q in quantities]
        refs: list[AttributeRef] = []
        for code in codes:
            klass = register_class(code)
            refs.append(AttributeRef(klass, code, 2))
            if code not in self._scalers:
                refs.append(AttributeRef(klass, code, 3))
            if klass == EXTENDED_REGISTER_CLASS:
                refs.append(AttributeRef(klass, code, 5))
        answers = dict(zip(((r.obis, r.attribute) for r in refs), await self.get_many(refs), strict=True))
        read_at = self._now()
        readings = []
        for code in codes:
            value = answers[(code, 2)]
            if isinstance(value, AccessDenied):
                raise AccessDenied(
                    f"{self.where}: reading {code} refused: {value}",
                    result=value.result,
                    hint="check the meter model has this register",
                )
            if code not in self._scalers:
                scaler_unit = answers[(code, 3)]
                if isinstance(scaler_unit, AccessDenied):
                    raise AccessDenied(
                        f"{self.where}: scaler of {code} refused: {scaler_unit}", result=scaler_unit.result
                    )
                self._scalers[code] = _scaler_unit(scaler_unit, f"{self.where} {code}")
            scaler, unit = self._scalers[code]
            number, scale = _scaled(value, scaler, f"{self.where} {code}")
            ts, snapshot = read_at, True
            captured = answers.get((code, 5))
            if isinstance(captured, bytes):
                ts, snapshot = self._to_utc(captured)[0], False
            readings.append(
                Reading(
                    meter_id=self.meter_id,
                    quantity=code,
                    ts=ts,
                    value=number,
                    scale=scale,
                    unit=unit,
                    snapshot=snapshot,
                    source=self.source,
                    read_at=read_at,
                )
            )
        return readings

    async def capture_objects(self, profile: str) -> tuple[list[CaptureColumn], int]:
        refs = [AttributeRef(PROFILE_CLASS, profile, 3), AttributeRef(PROFILE_CLASS, profile, 4)]
        if self._with_list():
            # A model's capture objects and period come back byte for byte alike from every meter
            # and session: their decoded form is looked up by the answer's bytes.
            response = await self._exchange(apdu.get_with_list(refs, self._invoke_id()))
            known = _profile_layout(response)
            if known is not None:
                return list(known[0]), known[1]
            objects, period = self._list_items(apdu.parse_get_response(response), len(refs))
        else:
            objects, period = await self.get_many(refs)
        if isinstance(objects, AccessDenied):
            raise AccessDenied(
                f"{self.where}: profile {profile} capture objects refused: {objects}",
                result=objects.result,
                hint="check the profile code for this meter model",
            )
        if not isinstance(objects, list):
            raise ApduError(f"{self.where}: capture objects of {profile} are not an array")
        columns = []
        for item in objects:
            if not (
                isinstance(item, list)
                and len(item) == 4
                and isinstance(item[0], int)
                and isinstance(item[1], bytes)
                and len(item[1]) == 6
                and isinstance(item[2], int)
            ):
                raise ApduError(f"{self.where}: capture object {item!r} of {profile} is malformed")
            columns.append(CaptureColumn(item[0], str(Obis.from_bytes(item[1])), item[2]))
        return columns, period if isinstance(period, int) else 0

    async def read_profile(self, profile: str, start: dt.datetime, end: dt.datetime) -> ReadingColumns:
        """Rows captured in [start, end]: register columns as read; in a load profile (capture period
        up to an hour) cumulative energy (D=8) also as interval deltas (D=29). The rows come as
        columns (a sequence of `Reading` to a caller that iterates, a frame by `to_frame()`)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise DlmsLocalError("profile range needs time-zone-aware datetimes")
        profile = canonical(profile)
        columns, period = await self.capture_objects(profile)
        clock_index = next((i for i, c in enumerate(columns) if c.class_id == CLOCK_CLASS), None)
        if clock_index is None:
            raise ApduError(f"{self.where}: profile {profile} has no clock column to time its rows")
        value_columns = [
            (i, c)
            for i, c in enumerate(columns)
            if c.class_id in (REGISTER_CLASS, EXTENDED_REGISTER_CLASS) and c.attribute == 2
        ]
        status_index = next(
            (
                i
                for i, c in enumerate(columns)
                if c.class_id == DATA_CLASS and c.obis.startswith("0.0.96.10.")
            ),
            None,
        )
        missing = [c for _, c in value_columns if c.obis not in self._scalers]
        if missing:
            answers = await self.get_many([AttributeRef(c.class_id, c.obis, 3) for c in missing])
            for column, answer in zip(missing, answers, strict=True):
                if isinstance(answer, AccessDenied):
                    raise AccessDenied(f"{self.where}: scaler of {column.obis} refused", result=answer.result)
                self._scalers[column.obis] = _scaler_unit(answer, f"{self.where} {column.obis}")
        lead = dt.timedelta(seconds=period)
        try:
            raw = await self.get(AttributeRef(PROFILE_CLASS, profile, 2), self._range(start - lead, end))
        except (ConnectionLost, MeterTimeout) as exc:
            raise IncompleteProfile(
                f"{self.where}: profile {profile} read broke off: {exc}",
                hint="nothing of this read was kept; the whole range may be read again",
            ) from exc
        data = axdr.decode_columns(raw, len(columns))
        read_at = self._now()
        raw_times = data[clock_index]
        if set(map(type, raw_times)) - {bytes}:
            bad = next(cell for cell in raw_times if type(cell) is not bytes)
            raise ApduError(f"{self.where}: profile {profile} clock cell {bad!r} is not a date-time")
        stamps = _stamps_to_utc(
            raw_times,  # type: ignore[arg-type]
            self.settings.deviation_inverted,
            self.settings.unspecified_zone,
        )
        times = [ts for ts, _ in stamps]
        statuses = (
            [s if type(s) is int else 0 for s in data[status_index]]
            if status_index is not None
            else [0] * len(stamps)
        )
        row_status = [
            status | (STATUS_CLOCK_INVALID if clock_status & CLOCK_STATUS_INVALID else 0)
            for (_, clock_status), status in zip(stamps, statuses, strict=True)
        ]
        # Rows in the range asked for; the row before the range only serves the first delta.
        picked = [i for i, ts in enumerate(times) if start <= ts <= end]
        picked_times = _gather(times, picked)
        picked_status = _gather(row_status, picked)
        # Delta rows: the interval (ts - period, ts] lies inside the range and the previous row
        # is exactly one period earlier (no delta is invented across a gap).
        first = start + lead
        steps = [i for i in picked if i > 0 and times[i] - times[i - 1] == lead and times[i] >= first]
        before = [i - 1 for i in steps]
        rows = ColumnsBuilder()
        for index, column in value_columns:
            scaler, unit = self._scalers[column.obis]
            what = f"{self.where} {profile} {column.obis}"
            cells = data[index]
            if set(map(type, cells)) <= {int}:
                numbers: list[int] = cells  # type: ignore[assignment]
                scales: int | list[int] = scaler
            else:
                scaled = [_scaled(cell, scaler, what) for cell in cells]
                numbers = [number for number, _ in scaled]
                scales = [scale for _, scale in scaled]
            rows.add(
                quantity=column.obis,
                unit=unit,
                ts=picked_times,
                values=_gather(numbers, picked),
                scale=scales if isinstance(scales, int) else _gather(scales, picked),
                status=picked_status,
            )
            code = _obis(column.obis)
            # Interval deltas only for load profiles (period up to an hour): a D=29 code carries no
            # period, so daily or monthly differences would read as 15-minute energy downstream.
            if not (code.d == 8 and 0 < period <= MAX_INTERVAL_S):
                continue
            if isinstance(scales, int):
                differences = list(map(operator.sub, _gather(numbers, steps), _gather(numbers, before)))
                delta_scales: int | list[int] = scales
            else:  # float cells: both rows brought to the finer scale first, exactly
                aligned = [_difference(numbers[i - 1], scales[i - 1], numbers[i], scales[i]) for i in steps]
                differences = [value for value, _ in aligned]
                delta_scales = [scale for _, scale in aligned]
            deltas = steps
            if differences and min(differences) < 0:  # a register that rolled over (or was reset)
                keep = [difference >= 0 for difference in differences]
                deltas, differences = list(compress(steps, keep)), list(compress(differences, keep))
                if not isinstance(delta_scales, int):
                    delta_scales = list(compress(delta_scales, keep))
            rows.add(
                quantity=str(Obis(code.a, code.b, code.c, 29, code.e, code.f)),
                unit=unit,
                ts=_gather(times, deltas),
                values=differences,
                scale=delta_scales,
                status=_gather(row_status, deltas),
            )
        return rows.build(meter_id=self.meter_id, source=self.source, read_at=read_at)

    async def read_events(self, start: dt.datetime, end: dt.datetime) -> list[Reading]:
        """The standard event log in [start, end]: one reading per event, value = event code."""
        log = self.settings.event_log
        columns, _ = await self.capture_objects(log)
        clock_index = next((i for i, c in enumerate(columns) if c.class_id == CLOCK_CLASS), None)
        code_index = next((i for i, c in enumerate(columns) if c.obis.startswith("0.0.96.11.")), None)
        if clock_index is None or code_index is None:
            raise ApduError(f"{self.where}: event log {log} lacks a clock or an event-code column")
        data = axdr.decode_columns(
            await self.get(AttributeRef(PROFILE_CLASS, log, 2), self._range(start, end)), len(columns)
        )
        read_at = self._now()
        readings = []
        for raw_time, event in zip(data[clock_index], data[code_index], strict=True):
            if not isinstance(raw_time, bytes) or not isinstance(event, int):
                raise ApduError(f"{self.where}: event log row ({raw_time!r}, {event!r}) is malformed")
            ts, _ = self._to_utc(raw_time)
            if start <= ts <= end:
                readings.append(
                    Reading(
                        meter_id=self.meter_id,
                        quantity=columns[code_index].obis,
                        ts=ts,
                        value=event,
                        scale=0,
                        unit="",
                        source=self.source,
                        read_at=read_at,
                    )
                )
        return readings

    async def read_frame_counter(self) -> int:
        value = await self.get_value(AttributeRef(DATA_CLASS, self.settings.frame_counter, 2))
        if not isinstance(value, int) or isinstance(value, bool):
            raise ApduError(f"{self.where}: frame counter {value!r} is not an integer")
        return value

    # --- writes -------------------------------------------------------------------------

    async def set_clock(self, when: dt.datetime) -> None:
        """Write the clock (attribute 2), keeping the meter's own deviation."""
        self._association.require("set")
        if self._deviation is None:
            await self.read_clock()
        stamp = CosemDateTime.from_utc(
            when,
            self._deviation,
            deviation_inverted=self.settings.deviation_inverted,
            unspecified_zone=self.settings.unspecified_zone,
        )
        ref = AttributeRef(CLOCK_CLASS, self.settings.clock, 2)
        result = apdu.parse_set_response(
            await self._exchange(apdu.set_request(ref, axdr.octets(stamp.to_bytes()), self._invoke_id()))
        )
        if result != 0:
            raise AccessDenied(
                f"{self.where}: setting the clock was refused: {apdu.result_name(result)}",
                result=result,
                hint="the client needs write access to the clock (a higher security level association)",
            )

    async def shift_time(self, seconds: int) -> None:
        """Clock method shift_time: a correction of at most +/-900 s without a time jump."""
        if not -MAX_SHIFT_S <= seconds <= MAX_SHIFT_S:
            raise DlmsLocalError(
                f"shift_time of {seconds} s is outside +/-{MAX_SHIFT_S} s",
                hint="use set_clock for larger corrections",
            )
        self._association.require("action")
        request = apdu.action_request(
            CLOCK_CLASS,
            self.settings.clock,
            SHIFT_TIME_METHOD,
            axdr.integer(axdr.LONG, seconds),
            self._invoke_id(),
        )
        status, _ = apdu.parse_action_response(await self._exchange(request))
        if status != 0:
            raise AccessDenied(
                f"{self.where}: shift_time was refused: {apdu.result_name(status)}", result=status
            )

    async def release(self) -> None:
        """RLRQ, answered by RLRE; a meter that does not answer is simply disconnected."""
        if not self._association.associated:
            return
        self._association.associated = False
        with contextlib.suppress(RemoteProtocolError):
            await self._transport.request(self._association.rlrq())


def _association_for(
    url: MeterUrl,
    settings: DlmsMeterSettings,
    secrets: Callable[[str], bytes] | None,
    counters: InvocationCounterStore | None,
    where: str,
) -> ClientAssociation:
    auth = url.params.get("auth", "none")
    key_ref = url.params.get("key")
    secret = b""
    if auth != "none":
        if secrets is None or key_ref is None:
            raise DlmsLocalError(
                f"{where}: auth={auth} needs a key store to look up {key_ref}",
                hint="run through the head-end, or pass secrets=",
            )
        secret = secrets(key_ref)
    if auth == "lls":
        return ClientAssociation(auth="lls", password=secret, max_pdu=settings.max_pdu, where=where)
    if auth == "hls-gmac":
        if len(secret) != 32:
            raise DlmsLocalError(
                f"{where}: the key store entry {key_ref} must hold 32 bytes "
                "(encryption key then authentication key)"
            )
        # Without a durable store, at least never repeat a counter within this process; a
        # head-end passes StateCounterStore so restarts never repeat one either.
        store = counters if counters is not None else PROCESS_COUNTERS
        assert key_ref is not None
        return ClientAssociation(
            auth="hls-gmac",
            keys=Keys(secret[:16], secret[16:]),
            counter=lambda: store.next_counter(key_ref),
            general_ciphering=settings.cipher == "general",
            max_pdu=settings.max_pdu,
            where=where,
        )
    return ClientAssociation(auth="none", max_pdu=settings.max_pdu, where=where)


@contextlib.asynccontextmanager
async def open_session(
    url: MeterUrl,
    *,
    secrets: Callable[[str], bytes] | None = None,
    counters: InvocationCounterStore | None = None,
    timeout: float = 10.0,
    settings: DlmsMeterSettings | None = None,
    meter_id: str = "",
    source: str = "",
    clock: Clock | None = None,
) -> AsyncIterator[DlmsSession]:
    if url.protocol != "dlms":
        raise DlmsLocalError(f"{url} is not a DLMS meter URL")
    settings = DlmsMeterSettings.for_url(url, settings)
    address = str(url)  # spelled once: MeterUrl builds its text anew each time
    where = f"meter {address}"
    association = _association_for(url, settings, secrets, counters, where)
    transport = await open_transport(
        url, timeout=timeout, hdlc_max_info=settings.hdlc_max_info, where=address
    )
    session = DlmsSession(
        transport,
        association,
        settings,
        where,
        meter_id=meter_id,
        source=source,
        now=clock.now if clock is not None else None,
    )
    try:
        association.accept_aare(await transport.request(association.aarq()))
        if association.hls_pending:
            association.accept_hls_response(await transport.request(association.hls_request(1)))
        yield session
    finally:
        try:
            await session.release()
        finally:
            await transport.close()
