"""The key store: file permissions, environment overrides, and secrets that never show."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from headend.errors import KeyStoreError
from headend.keystore import KeyStore, env_name


def test_file_keys_resolve_and_hide_in_reprs(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.toml")
    store.write("M-1", password='pa"ss')
    store.write("M.2", akey="00" * 16, ekey="11" * 16)
    assert os.stat(tmp_path / "keys.toml").st_mode & 0o777 == 0o600
    one = store.resolve("meter-keys:M-1")
    assert one.password == b'pa"ss'
    two = store.resolve("meter-keys:M.2")
    assert two.authentication_key == bytes(16) and two.encryption_key == b"\x11" * 16
    for shown in (repr(one), str(one), repr(two), repr(store)):
        assert "pa" not in shown.replace("path", "") and "11" * 4 not in shown


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.toml", environ={env_name("m-1"): "password_hex=00ff"})
    store.write("m-1", password="from-file")
    assert env_name("m-1") == "AMR_METER_KEY_M_1"
    assert store.resolve("meter-keys:m-1").password == b"\x00\xff"


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    KeyStore(path).write("A", password="x")
    os.chmod(path, 0o644)
    with pytest.raises(KeyStoreError, match=r"readable by others") as error:
        KeyStore(path).resolve("meter-keys:A")
    assert error.value.hint == f"chmod 600 {path}"


def test_errors_name_the_reference_but_not_the_secret(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.toml", environ={env_name("B"): "akey=nothex-secret"})
    store.write("A", password="hunter2")
    with pytest.raises(KeyStoreError) as missing:
        store.resolve("meter-keys:C")
    assert "meter-keys:C" in str(missing.value) and "hunter2" not in str(missing.value)
    with pytest.raises(KeyStoreError) as bad:
        store.resolve("meter-keys:B")
    assert "nothex-secret" not in str(bad.value)
    with pytest.raises(KeyStoreError, match="meter-keys:ID"):
        store.resolve("other:A")
