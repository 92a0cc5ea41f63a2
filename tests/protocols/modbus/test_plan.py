"""Request planning: as few requests as the limits allow, each entry read exactly once."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.modbus.datatypes import DataType, WordOrder
from protocols.modbus.maps import Function, RegisterEntry, load_map
from protocols.modbus.plan import plan_reads, plan_single


def _entry(index: int, address: int, dtype: DataType, function: Function) -> RegisterEntry:
    return RegisterEntry(
        name=f"e{index}", quantity=f"1.0.{index % 250}.7.{index // 250}.255", address=address,
        manual_address=address, function=function, type=dtype, word_order=WordOrder.BIG, unit="",
        resolution=0 if dtype.is_float else None, source="test",
    )


@st.composite
def entry_sets(draw: st.DrawFn) -> list[RegisterEntry]:
    entries: list[RegisterEntry] = []
    for function in Function:
        address = draw(st.integers(0, 200))
        for _ in range(draw(st.integers(0, 25))):
            dtype = draw(st.sampled_from(list(DataType)))
            entries.append(_entry(len(entries), address, dtype, function))
            address += dtype.width + draw(st.integers(0, 40))
    return entries


@settings(max_examples=50)
@given(entry_sets(), st.integers(4, 125), st.integers(0, 30))
def test_every_entry_once_within_limits(
    entries: list[RegisterEntry], max_registers: int, max_gap: int
) -> None:
    blocks = plan_reads(entries, max_registers=max_registers, max_gap=max_gap)
    planned = [e.name for b in blocks for e in b.entries]
    assert sorted(planned) == sorted(e.name for e in entries)
    for block in blocks:
        assert block.count <= max_registers
        assert all(e.function is block.function for e in block.entries)
        assert all(block.address <= e.address and e.end <= block.address + block.count for e in block.entries)
        ordered = sorted(block.entries, key=lambda e: e.address)
        assert all(b.address - a.end <= max_gap for a, b in itertools.pairwise(ordered))
        assert block.address == ordered[0].address and block.address + block.count == ordered[-1].end


@settings(max_examples=50)
@given(entry_sets(), st.integers(4, 125), st.integers(0, 30))
def test_never_more_requests_than_values(
    entries: list[RegisterEntry], max_registers: int, max_gap: int
) -> None:
    assert len(plan_reads(entries, max_registers=max_registers, max_gap=max_gap)) <= len(plan_single(entries))


def test_contiguous_values_share_one_request_up_to_125_registers() -> None:
    entries = [_entry(i, 2 * i, DataType.F32, Function.INPUT) for i in range(100)]  # 200 registers
    blocks = plan_reads(entries, max_registers=125, max_gap=0)
    assert [b.count for b in blocks] == [124, 76]


def test_shipped_maps_need_few_requests() -> None:
    sdm630 = load_map("eastron-sdm630")
    blocks = plan_reads(sdm630.entries, max_registers=sdm630.max_registers, max_gap=sdm630.max_gap)
    assert len(blocks) <= 5
    assert len(plan_single(sdm630.entries)) >= 5 * len(blocks)
    iem = load_map("schneider-iem3000")
    assert len(plan_reads(iem.entries, max_registers=iem.max_registers, max_gap=iem.max_gap)) <= 4


@settings(max_examples=25)
@given(entry_sets(), st.data())
def test_one_call_block_layout_decodes_like_each_entry_alone(
    entries: list[RegisterEntry], data: st.DataObject
) -> None:
    from protocols.modbus.datatypes import decode, registers_to_bytes

    orders = st.sampled_from(list(WordOrder))
    mixed = [e.model_copy(update={"word_order": data.draw(orders)}) for e in entries]
    for block in plan_reads(mixed, max_registers=125, max_gap=10):
        words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=block.count, max_size=block.count))
        raw = registers_to_bytes(words)
        layout, direct, others = block.layout
        together = dict(zip([e.name for e in direct], layout.unpack_from(raw), strict=True))
        assert {e.name for e in direct} | {e.name for e in others} == {e.name for e in block.entries}
        for entry in direct:
            alone = decode(raw, entry.address - block.address, entry.type, entry.word_order)
            both_nan = alone != alone and together[entry.name] != together[entry.name]
            assert together[entry.name] == alone or both_nan
