from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.dlms import ciphering
from protocols.dlms.association import ClientAssociation
from protocols.dlms.errors import DlmsRemoteError
from protocols.errors import RemoteProtocolError

KEYS = ciphering.Keys(bytes(range(16)), bytes(range(0xD0, 0xE0)))
TITLE = bytes.fromhex("4D4D4D0000BC614E")


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=600), st.integers(0, 2**32 - 1), st.booleans())
def test_wrap_parse_decrypt_round_trip(body: bytes, counter: int, general: bool) -> None:
    plain = b"\xc0" + body
    wrapped = ciphering.wrap(plain, KEYS, TITLE, counter, general=general)
    envelope = ciphering.parse(wrapped)
    assert envelope.invocation_counter == counter
    assert envelope.tag == (ciphering.GENERAL_GLO if general else 0xC8)
    assert ciphering.decrypt(envelope.ciphertext, KEYS, envelope.system_title or TITLE, counter) == plain


def test_tampered_ciphertext_fails_authentication() -> None:
    wrapped = bytearray(ciphering.wrap(b"\xc0\x01\x01", KEYS, TITLE, 5, general=True))
    wrapped[-1] ^= 1
    envelope = ciphering.parse(bytes(wrapped))
    with pytest.raises(DlmsRemoteError, match="failed authentication"):
        ciphering.decrypt(envelope.ciphertext, KEYS, TITLE, 5)


def test_keys_never_show_in_repr() -> None:
    assert bytes(range(16)).hex() not in repr(KEYS) and repr(KEYS) == "Keys(***)"


def test_replayed_counter_is_refused() -> None:
    association = ClientAssociation(auth="hls-gmac", keys=KEYS, counter=iter(range(1, 100)).__next__)
    association.meter_title = TITLE
    answer = ciphering.wrap(b"\xc4\x01\x01\x00\x00", KEYS, TITLE, 9, general=True)
    assert association.unprotect(answer) == b"\xc4\x01\x01\x00\x00"
    with pytest.raises(DlmsRemoteError, match="reused"):
        association.unprotect(answer)


def test_lls_password_is_not_in_the_association_repr_or_errors() -> None:
    association = ClientAssociation(auth="lls", password=b"s3cr3t-pw")
    assert b"s3cr3t-pw" in association.aarq()  # it must be on the wire, and only there
    assert "s3cr3t" not in repr(association)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120))
def test_any_bytes_to_envelope_parser_raise_only_remote_errors(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        ciphering.parse(data)
    with contextlib.suppress(RemoteProtocolError):
        ciphering.parse(b"\xdb" + data)
