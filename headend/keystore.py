"""The meter key store, apart from the registry: a TOML file readable by its owner only,
or `AMR_METER_KEY_<ID>` environment variables, which win.

A registry URL names a key as `key=meter-keys:ID`; the secret is read only when a session
opens and lives in a `MeterSecrets` whose repr hides it, so it is never logged or exported.

File (mode 0600):

    [meter-keys.M000123]
    password = "12345678"                 # LLS (or password_hex = "..." for a binary one)
    akey = "000102030405060708090a0b0c0d0e0f"   # HLS-GMAC authentication key (hex)
    ekey = "000102030405060708090a0b0c0d0e0f"   # HLS-GMAC block cipher key (hex)

Environment: `AMR_METER_KEY_M000123="password=12345678"` or `"akey=...,ekey=..."`; the id
is upper-cased with every character other than a letter or digit written as `_`.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from headend.errors import KeyStoreError

NAMESPACE = "meter-keys"
ENV_PREFIX = "AMR_METER_KEY_"
_FIELDS = ("password", "password_hex", "akey", "ekey")


@dataclass(frozen=True, slots=True)
class MeterSecrets:
    reference: str
    password: bytes | None = field(default=None, repr=False)
    authentication_key: bytes | None = field(default=None, repr=False)
    encryption_key: bytes | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"MeterSecrets({self.reference}, ***)"


def env_name(key_id: str) -> str:
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", key_id).upper()


def _split_reference(reference: str) -> str:
    namespace, _, key_id = reference.partition(":")
    if namespace != NAMESPACE or not key_id:
        raise KeyStoreError(
            f"key reference {reference!r} is not of the form {NAMESPACE}:ID",
            hint=f"write key={NAMESPACE}:ID in the meter URL",
        )
    return key_id


def _hex(reference: str, name: str, value: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        problem = f"key {reference}: {name} is not hexadecimal"
        raise KeyStoreError(problem, hint="write keys as hex digits") from None
    if len(raw) not in (16, 32):
        raise KeyStoreError(f"key {reference}: {name} has {len(raw)} bytes, expected 16 or 32")
    return raw


def _secrets(reference: str, values: Mapping[str, str], origin: str) -> MeterSecrets:
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise KeyStoreError(f"key {reference} in {origin}: unknown field(s) {unknown}", hint=f"use {_FIELDS}")
    password = values.get("password")
    raw = password.encode() if password is not None else None
    if "password_hex" in values:
        try:
            raw = bytes.fromhex(values["password_hex"])
        except ValueError:
            raise KeyStoreError(f"key {reference}: password_hex is not hexadecimal") from None
    return MeterSecrets(
        reference=reference,
        password=raw,
        authentication_key=_hex(reference, "akey", values["akey"]) if "akey" in values else None,
        encryption_key=_hex(reference, "ekey", values["ekey"]) if "ekey" in values else None,
    )


class KeyStore:
    """Resolves key references; reads the file on each lookup so rotations apply at once."""

    def __init__(self, path: Path | None = None, *, environ: Mapping[str, str] | None = None) -> None:
        self.path = path
        self._environ = os.environ if environ is None else environ

    def __repr__(self) -> str:
        return f"KeyStore(path={self.path})"

    def _from_env(self, reference: str, key_id: str) -> MeterSecrets | None:
        text = self._environ.get(env_name(key_id))
        if text is None:
            return None
        values: dict[str, str] = {}
        for part in text.split(","):
            name, sep, value = part.partition("=")
            if not sep:
                raise KeyStoreError(
                    f"environment variable {env_name(key_id)} is not name=value pairs",
                    hint='write "password=..." or "akey=HEX,ekey=HEX"',
                )
            values[name.strip()] = value.strip()
        return _secrets(reference, values, env_name(key_id))

    def _file_table(self) -> Mapping[str, object]:
        assert self.path is not None
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            raise KeyStoreError(
                f"key file {self.path} does not exist", hint="create it, or set headend.key_file"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyStoreError(
                f"key file {self.path} is readable by others (mode {stat.S_IMODE(mode):o})",
                hint=f"chmod 600 {self.path}",
            )
        try:
            with open(self.path, "rb") as handle:
                table = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            # The decoder's message names line and column but never quotes the value.
            raise KeyStoreError(f"key file {self.path} is not valid TOML: {exc}") from None
        section = table.get(NAMESPACE, {})
        if not isinstance(section, dict):
            raise KeyStoreError(f"key file {self.path}: [{NAMESPACE}] is not a table")
        return section

    def resolve(self, reference: str) -> MeterSecrets:
        key_id = _split_reference(reference)
        found = self._from_env(reference, key_id)
        if found is not None:
            return found
        if self.path is not None:
            entry = self._file_table().get(key_id)
            if isinstance(entry, dict):
                return _secrets(reference, {str(k): str(v) for k, v in entry.items()}, str(self.path))
        raise KeyStoreError(
            f"no key {reference} in {self.path or 'the environment'}",
            hint=f"add [{NAMESPACE}.{key_id}] to the key file or set {env_name(key_id)}",
        )

    def write(self, key_id: str, **values: str) -> None:
        """Add or replace one key in the file, creating it with mode 0600 (for tests and tooling)."""
        if self.path is None:
            raise KeyStoreError("no key file configured", hint="set headend.key_file")
        table: dict[str, dict[str, str]] = {}
        if self.path.exists():
            table = {k: {str(a): str(b) for a, b in dict(v).items()} for k, v in self._file_table().items()
                     if isinstance(v, dict)}
        _secrets(f"{NAMESPACE}:{key_id}", values, "arguments")
        table[key_id] = dict(values)
        lines = []
        for name, entry in sorted(table.items()):
            lines.append(f'[{NAMESPACE}."{name}"]')
            lines.extend(f"{k} = {json.dumps(v)}" for k, v in sorted(entry.items()))
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        os.chmod(self.path, 0o600)
