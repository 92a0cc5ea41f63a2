"""Glo-ciphering of xDLMS APDUs with security suite 0 (AES-GCM-128), authenticated encryption.

Two envelopes, chosen per meter: general-glo-ciphering (tag 0xDB, carries the sender's
system title) and service-specific glo ciphering (glo-get-request 0xC8 and friends). The
cryptography is dlms-cosem's (`security.encrypt`/`decrypt`, AAD = SC || AK); the
envelopes are ours because theirs writes a one-byte length and breaks above 127 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlms_cosem import security

from protocols.dlms import axdr
from protocols.dlms.errors import ApduError, DlmsRemoteError

GENERAL_GLO = 0xDB
# plain tag -> service-specific glo tag (Green Book table of glo-ciphered APDUs)
GLO_TAGS = {0xC0: 0xC8, 0xC1: 0xC9, 0xC3: 0xCB, 0xC4: 0xCC, 0xC5: 0xCD, 0xC7: 0xCF}
PLAIN_OF_GLO = {glo: plain for plain, glo in GLO_TAGS.items()}
SECURITY_CONTROL = security.SecurityControlField(security_suite=0, authenticated=True, encrypted=True)
SC_BYTE = SECURITY_CONTROL.to_bytes()[0]


@dataclass(frozen=True, slots=True)
class Keys:
    encryption: bytes
    authentication: bytes

    def __repr__(self) -> str:  # never print key material
        return "Keys(***)"


@dataclass(frozen=True, slots=True)
class Ciphered:
    """A glo-ciphered APDU taken apart: which envelope, the sender's title, counter, ciphertext."""

    tag: int
    system_title: bytes | None
    invocation_counter: int
    ciphertext: bytes


def encrypt(plain: bytes, keys: Keys, system_title: bytes, counter: int) -> bytes:
    return bytes(
        security.encrypt(
            SECURITY_CONTROL,
            system_title=system_title,
            invocation_counter=counter,
            key=keys.encryption,
            plain_text=plain,
            auth_key=keys.authentication,
        )
    )


def decrypt(ciphertext: bytes, keys: Keys, system_title: bytes, counter: int) -> bytes:
    try:
        return bytes(
            security.decrypt(
                SECURITY_CONTROL,
                system_title=system_title,
                invocation_counter=counter,
                key=keys.encryption,
                cipher_text=ciphertext,
                auth_key=keys.authentication,
            )
        )
    except Exception as exc:  # dlms-cosem raises DecryptionError or ValueError; both mean a bad APDU
        raise DlmsRemoteError(
            f"a ciphered APDU (counter {counter}) failed authentication: {type(exc).__name__}",
            retryable=False,
            hint="the keys for this meter are wrong, or the frame was tampered with",
        ) from None


def wrap(plain: bytes, keys: Keys, system_title: bytes, counter: int, *, general: bool) -> bytes:
    """Cipher `plain` and put it in its envelope (general-glo or the service's glo tag)."""
    body = bytes((SC_BYTE,)) + counter.to_bytes(4, "big") + encrypt(plain, keys, system_title, counter)
    if general:
        return (
            bytes((GENERAL_GLO,))
            + axdr.encode_length(len(system_title))
            + system_title
            + axdr.encode_length(len(body))
            + body
        )
    tag = GLO_TAGS.get(plain[0])
    if tag is None:
        raise ApduError(f"APDU tag {plain[0]:#x} has no service-specific glo form", retryable=False)
    return bytes((tag,)) + axdr.encode_length(len(body)) + body


def is_ciphered(data: bytes) -> bool:
    return bool(data) and (data[0] == GENERAL_GLO or data[0] in PLAIN_OF_GLO)


def parse(data: bytes) -> Ciphered:
    if not data:
        raise ApduError("empty ciphered APDU")
    tag = data[0]
    pos = 1
    title: bytes | None = None
    if tag == GENERAL_GLO:
        size, pos = axdr.decode_length(data, pos)
        title = bytes(data[pos : pos + size])
        pos += size
    elif tag not in PLAIN_OF_GLO:
        raise ApduError(f"tag {tag:#x} is not a glo-ciphered APDU")
    length, pos = axdr.decode_length(data, pos)
    if pos + length != len(data) or length < 5 + 12:
        raise ApduError(f"ciphered APDU announces {length} bytes but carries {len(data) - pos}")
    if data[pos] != SC_BYTE:
        raise ApduError(
            f"ciphered APDU security control {data[pos]:#x} is not suite 0 with "
            "authenticated encryption (0x30)",
            hint="set the meter's security policy to 3",
        )
    counter = int.from_bytes(data[pos + 1 : pos + 5], "big")
    return Ciphered(tag, title, counter, bytes(data[pos + 5 :]))
