"""Meter addresses as URLs: one grammar for the CLI, the registry and configuration.

    dlms+tcp://host:4059?client=16&server=1                    IEC 62056-47 wrapper
    dlms+hdlc+tcp://host:port?client=16&server=1&physical=17   HDLC through a TCP gateway
    dlms+hdlc+serial:///dev/ttyUSB0?baud=9600                  HDLC on a serial line
    modbus+tcp://host:502?unit=1&map=eastron-sdm630
    modbus+rtu:///dev/ttyUSB0?baud=9600&unit=1&map=...         RTU on a serial line
    modbus+rtu+tcp://host:4001?unit=1&map=...                  RTU through a serial gateway

Secrets are references (`auth=lls&key=meter-keys:ID`), never inline: an URL that carries
a password is refused, so one can never be logged or exported by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from core.errors import ContractError

TCP_SCHEMES = {"dlms+tcp", "dlms+hdlc+tcp", "modbus+tcp", "modbus+rtu+tcp"}
SERIAL_SCHEMES = {"dlms+hdlc+serial", "modbus+rtu"}
SCHEMES = TCP_SCHEMES | SERIAL_SCHEMES
DEFAULT_PORTS = {"dlms+tcp": 4059, "modbus+tcp": 502}

# Parameters each protocol understands; anything else is a typo worth reporting.
_COMMON = {"timeout", "model"}
_DLMS = _COMMON | {
    "client", "server", "physical", "addr-size", "auth", "key", "security", "cipher",
    "baud", "parity", "stopbits", "bytesize", "max-pdu", "window",
}
_MODBUS = _COMMON | {"unit", "map", "baud", "parity", "stopbits", "bytesize"}
_INTEGER_PARAMS = {
    "client", "server", "physical", "addr-size", "baud", "unit", "max-pdu", "window",
    "stopbits", "bytesize",
}
_SECRET_PARAMS = {"password", "pass", "secret", "akey", "ekey"}
_KEY_REFERENCE = re.compile(r"^[a-z][a-z0-9-]*:[A-Za-z0-9._-]+$")
_AUTH = {"none", "lls", "hls-gmac"}


def _fail(url: str, part: str, problem: str, hint: str | None = None) -> ContractError:
    return ContractError(f"meter URL {redact(url)!r}: {part}: {problem}", hint=hint)


def redact(url: str) -> str:
    """The URL with any inline secret value blanked, safe to print."""
    return re.sub(
        r"(?i)([?&](?:" + "|".join(sorted(_SECRET_PARAMS)) + r")=)[^&]*", r"\1***", url
    )


@dataclass(frozen=True, slots=True)
class MeterUrl:
    scheme: str
    host: str | None = None
    port: int | None = None
    device: str | None = None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def protocol(self) -> str:
        return self.scheme.split("+", 1)[0]

    @property
    def is_serial(self) -> bool:
        return self.scheme in SERIAL_SCHEMES

    @property
    def line(self) -> str:
        """The shared medium: a serial device or a TCP endpoint (one request at a time on RTU)."""
        return self.device if self.device else f"{self.host}:{self.port}"

    def int_param(self, name: str, default: int) -> int:
        return int(self.params[name]) if name in self.params else default

    @classmethod
    def parse(cls, url: str) -> MeterUrl:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise _fail(
                url, "scheme", f"{scheme or '(none)'} is not a meter scheme",
                hint="use one of " + ", ".join(sorted(SCHEMES)),
            )
        allowed = _DLMS if scheme.startswith("dlms") else _MODBUS
        params: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            lowered = name.lower()
            if lowered in _SECRET_PARAMS:
                raise _fail(
                    url, f"parameter {name}", "secrets may not be written in a meter URL",
                    hint="store the secret in the key store and write key=meter-keys:ID",
                )
            if lowered not in allowed:
                raise _fail(url, f"parameter {name}", "unknown for " + scheme,
                            hint="known parameters: " + ", ".join(sorted(allowed)))
            if lowered in params:
                raise _fail(url, f"parameter {name}", "given twice")
            if lowered in _INTEGER_PARAMS and not value.isdigit():
                raise _fail(url, f"parameter {name}", f"{value!r} is not a whole number")
            params[lowered] = value
        if "key" in params and not _KEY_REFERENCE.match(params["key"]):
            raise _fail(url, "parameter key", "must be a key-store reference like meter-keys:ID",
                        hint="keys never appear in URLs; add them with the key store")
        if "auth" in params and params["auth"] not in _AUTH:
            raise _fail(url, "parameter auth", f"{params['auth']!r} is not one of {sorted(_AUTH)}")
        if params.get("auth", "none") != "none" and "key" not in params:
            raise _fail(url, "parameter key", f"auth={params['auth']} needs key=meter-keys:ID")
        if scheme.startswith("modbus") and "map" not in params:
            raise _fail(url, "parameter map", "a Modbus meter needs its register map",
                        hint="add map=NAME; `amr meters maps` lists them")
        if scheme in SERIAL_SCHEMES:
            if parts.netloc:
                raise _fail(url, "host", "a serial URL has no host; write three slashes",
                            hint=f"{scheme}:///dev/ttyUSB0?...")
            if not parts.path or parts.path == "/":
                raise _fail(url, "device", "no serial device path")
            return cls(scheme=scheme, device=parts.path, params=params)
        try:
            host, port = parts.hostname, parts.port
        except ValueError as exc:
            raise _fail(url, "port", str(exc)) from exc
        if not host:
            raise _fail(url, "host", "missing")
        if port is None:
            if scheme not in DEFAULT_PORTS:
                raise _fail(url, "port", f"{scheme} has no default port; write host:port")
            port = DEFAULT_PORTS[scheme]
        if parts.path not in ("", "/"):
            raise _fail(url, "path", f"{parts.path!r} is not expected on a TCP meter URL")
        return cls(scheme=scheme, host=host, port=port, params=params)

    def __str__(self) -> str:
        query = ("?" + urlencode(self.params, safe=":/")) if self.params else ""
        if self.device is not None:
            return f"{self.scheme}://{quote(self.device)}{query}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{query}"
