"""The shipped register maps load and agree with themselves; malformed maps fail with file, entry, reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.obis import Obis
from protocols.modbus.datatypes import DataType
from protocols.modbus.errors import MapError
from protocols.modbus.maps import Function, Numbering, list_maps, load_map, maps_dir

REQUIRED = {"eastron-sdm120", "eastron-sdm630", "schneider-iem3000"}


def test_required_maps_are_listed_and_the_template_is_not() -> None:
    names = {m.name for m in list_maps()}
    assert names >= REQUIRED
    assert "_template" not in names


def test_template_is_a_valid_map() -> None:
    template = load_map(str(maps_dir() / "_template.toml"))
    assert {e.type for e in template.entries} >= {DataType.F32, DataType.U32}


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_entry_cites_the_manual_and_feeds_an_obis_code(name: str) -> None:
    register_map = load_map(name)
    assert register_map.manual and register_map.title
    for entry in register_map.entries:
        assert entry.source.strip()
        assert str(Obis.parse(entry.quantity)) == entry.quantity
        assert entry.manual_address == register_map.numbering.manual_address(entry.address, entry.function)


def test_eastron_maps_are_input_float_registers_in_modicon_numbering() -> None:
    for name in ("eastron-sdm120", "eastron-sdm630"):
        register_map = load_map(name)
        assert register_map.numbering is Numbering.MODICON
        assert {e.function for e in register_map.entries} == {Function.INPUT}
        assert {e.type for e in register_map.entries} == {DataType.F32}
    energy = load_map("eastron-sdm630").by_quantity["1.0.1.8.0.255"]
    assert (energy.address, energy.manual_address, energy.unit, energy.scale) == (0x48, 30073, "Wh", 3)


def test_iem3000_energy_is_a_64_bit_integer_in_wh_in_holding_registers() -> None:
    register_map = load_map("schneider-iem3000")
    energy = register_map.by_quantity["1.0.1.8.0.255"]
    assert energy.function is Function.HOLDING
    assert energy.type is DataType.S64 and energy.unit == "Wh" and energy.scale == 0
    assert (energy.manual_address, energy.address) == (3204, 3203)  # register number - 1 on the wire


def test_selecting_an_unknown_quantity_names_what_the_map_serves() -> None:
    with pytest.raises(MapError, match=r"no entry for quantity 1\.0\.99\.1\.0\.255") as caught:
        load_map("eastron-sdm120").select(["1.0.99.1.0.255"])
    assert caught.value.hint and "1.0.1.8.0.255" in caught.value.hint


def test_unknown_map_lists_the_known_ones() -> None:
    with pytest.raises(MapError, match="not found") as caught:
        load_map("acme-9000")
    assert caught.value.hint and "eastron-sdm630" in caught.value.hint


def test_a_map_name_cannot_escape_the_directory() -> None:
    with pytest.raises(MapError, match="lowercase"):
        load_map("..")


GOOD_ENTRY = """
[[register]]
name = "energy"
quantity = "1.0.1.8.0.255"
address = 0x48
manual_address = 30073
type = "f32"
unit = "Wh"
scale = 3
resolution = 1
source = "page 1"
"""
HEADER = """
name = "{name}"
title = "t"
manufacturer = "m"
manual = "doc"
numbering = "modicon"
function = "input"
word_order = "big"
"""


def _write(tmp_path: Path, body: str, name: str = "broken") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(HEADER.format(name=name) + body, encoding="utf-8")
    return path


def test_a_good_map_from_a_path_loads(tmp_path: Path) -> None:
    register_map = load_map(str(_write(tmp_path, GOOD_ENTRY, name="good")))
    assert register_map.quantities == ["1.0.1.8.0.255"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("manual_address = 30073", "manual_address = 30074"), "does not match wire address 72"),
        (('type = "f32"', 'type = "f16"'), "type"),
        (("resolution = 1\n", ""), "needs `resolution`"),
        (('quantity = "1.0.1.8.0.255"', 'quantity = "1.8.0"'), "not six groups"),
        (('source = "page 1"', 'source = ""'), "source"),
        (("scale = 3", "scale = 3\ncolour = 1"), "colour"),
        (("scale = 3", 'scale = 3\nmin = "5"\nmax = "1"'), "min 5 is above max 1"),
    ],
    ids=["address", "type", "resolution", "quantity", "source", "unknown-field", "range"],
)
def test_malformed_entry_names_file_entry_and_reason(
    tmp_path: Path, change: tuple[str, str], reason: str
) -> None:
    path = _write(tmp_path, GOOD_ENTRY.replace(*change))
    with pytest.raises(MapError) as caught:
        load_map(str(path))
    message = str(caught.value)
    assert str(path) in message
    assert "'energy'" in message or "entry 1" in message
    assert reason in message


def test_overlapping_and_duplicate_entries_are_refused(tmp_path: Path) -> None:
    second = GOOD_ENTRY.replace('name = "energy"', 'name = "other"').replace(
        'quantity = "1.0.1.8.0.255"', 'quantity = "1.0.2.8.0.255"').replace(
        "address = 0x48", "address = 0x49").replace("manual_address = 30073", "manual_address = 30074")
    with pytest.raises(MapError, match="'energy' and 'other' overlap"):
        load_map(str(_write(tmp_path, GOOD_ENTRY + second)))
    same_quantity = GOOD_ENTRY.replace('name = "energy"', 'name = "again"').replace(
        "address = 0x48", "address = 0x4A").replace("manual_address = 30073", "manual_address = 30075")
    with pytest.raises(MapError, match="already fed by 'energy'"):
        load_map(str(_write(tmp_path, GOOD_ENTRY + same_quantity, name="dup")))


def test_invalid_toml_and_wrong_name_are_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n", encoding="utf-8")
    with pytest.raises(MapError, match="not valid TOML"):
        load_map(str(bad))
    renamed = _write(tmp_path, GOOD_ENTRY, name="one")
    moved = renamed.rename(tmp_path / "two.toml")
    with pytest.raises(MapError, match="differs from the file name"):
        load_map(str(moved))


def test_numbering_conventions() -> None:
    assert Numbering.WIRE.manual_address(72, Function.INPUT) == 72
    assert Numbering.ONE_BASED.manual_address(3203, Function.HOLDING) == 3204
    assert Numbering.MODICON.manual_address(0x48, Function.INPUT) == 30073
    assert Numbering.MODICON.manual_address(0, Function.HOLDING) == 40001
    assert Numbering.MODICON.manual_address(0xFC00, Function.HOLDING) == 464513


@pytest.mark.parametrize("name", ["eastron-sdm120", "eastron-sdm630"])
def test_eastron_citations_agree_with_the_addresses(name: str) -> None:
    # Eastron numbers each parameter N at 30001 + 2(N - 1) and prints the wire address in hex:
    # the three numbers a source cites must agree with each other and with the entry
    for entry in load_map(name).entries:
        cited = re.search(r"parameter (\d+) \((3\d{4}), hex ([0-9A-F]{2}) ([0-9A-F]{2})\)", entry.source)
        assert cited is not None, entry.source
        parameter, register, wire = int(cited[1]), int(cited[2]), int(cited[3] + cited[4], 16)
        assert register == 30001 + 2 * (parameter - 1) == entry.manual_address, entry.name
        assert wire == 2 * (parameter - 1) == entry.address, entry.name
