"""The hot functions the Rust core enters without PyO3's argument parsing (rust/fastcall.rs).

``constant_time_eq``, ``parse_plain`` and ``decode_plain`` serve the common call (positional
arguments of the exact types, a result without error) themselves and hand every other call to
the ordinary PyO3 function: whichever way a call goes, both backends must answer alike.
"""

from __future__ import annotations

import base64
import inspect
from types import ModuleType

import pytest

from seikyou_auth.errors import SaslCancelled, SaslError

MESSAGE = b"\x00ma10001a@seikyou.ne.jp\x00Tr0ub4dor&3"
LINE = base64.b64encode(MESSAGE)
FIELDS = ("", "ma10001a@seikyou.ne.jp", b"Tr0ub4dor&3")
FAST = ("constant_time_eq", "parse_plain", "decode_plain")


class _Bytes(bytes):
    pass


@pytest.mark.parametrize("name", FAST)
def test_signatures_match(both_backends: tuple[ModuleType, ModuleType], name: str) -> None:
    rust, python = both_backends
    rust_parameters = list(inspect.signature(getattr(rust, name)).parameters)
    assert rust_parameters == list(inspect.signature(getattr(python, name)).parameters)
    assert getattr(rust, name).__name__ == name
    assert getattr(rust, name).__module__ == rust.__name__


def test_keywords_and_mixed_calls(backend: ModuleType) -> None:
    assert backend.constant_time_eq(a=b"x", b=b"x") is True
    assert backend.constant_time_eq(b"x", b="y") is False
    assert backend.constant_time_eq(b="x", a="x") is True
    assert backend.parse_plain(message=MESSAGE) == FIELDS
    assert backend.decode_plain(line=LINE) == FIELDS


def test_wrong_argument_counts_and_names(backend: ModuleType) -> None:
    for call in (
        lambda: backend.constant_time_eq(b"x"),
        lambda: backend.constant_time_eq(b"x", b"x", b"x"),
        lambda: backend.constant_time_eq(b"x", c=b"x"),
        lambda: backend.constant_time_eq(b"x", a=b"x"),
        lambda: backend.parse_plain(),
        lambda: backend.parse_plain(MESSAGE, MESSAGE),
        lambda: backend.parse_plain(line=MESSAGE),
        lambda: backend.decode_plain(),
        lambda: backend.decode_plain(LINE, message=LINE),
    ):
        with pytest.raises(TypeError):
            call()


def test_subclasses_and_other_types(backend: ModuleType) -> None:
    assert backend.parse_plain(_Bytes(MESSAGE)) == FIELDS
    assert backend.decode_plain(_Bytes(LINE)) == FIELDS
    for other in (MESSAGE.decode(), bytearray(MESSAGE), memoryview(MESSAGE), None):
        with pytest.raises(TypeError):
            backend.parse_plain(other)
        with pytest.raises(TypeError):
            backend.decode_plain(other)


def test_results_are_exact_types(backend: ModuleType) -> None:
    for result in (backend.parse_plain(MESSAGE), backend.decode_plain(LINE)):
        assert type(result) is tuple
        assert [type(field) for field in result] == [str, str, bytes]
    assert backend.parse_plain(b"z\x00u\x00p") == ("z", "u", b"p")
    assert backend.parse_plain("é\x00ü\x00p".encode()) == ("é", "ü", b"p")


@pytest.mark.parametrize(
    "message",
    [
        b"\xff\x00u\x00p",  # authzid not UTF-8
        b"\x00\xff\x00p",  # authcid not UTF-8
        b"\x00\xed\xa0\x80\x00p",  # a UTF-8-encoded surrogate: refused by both decoders
        b"\x00u\x00p\x00",
        b"\x00u",
        b"\x00\x00p",
    ],
)
def test_refusals_go_through_either_path(backend: ModuleType, message: bytes) -> None:
    with pytest.raises(SaslError):
        backend.parse_plain(message)
    with pytest.raises(SaslError):
        backend.decode_plain(base64.b64encode(message))
    # The refused call leaves no error pending: the next one succeeds.
    assert backend.parse_plain(MESSAGE) == FIELDS


def test_cancel_and_bad_base64(backend: ModuleType) -> None:
    with pytest.raises(SaslCancelled):
        backend.decode_plain(b"*")
    with pytest.raises(SaslError):
        backend.decode_plain(LINE[:-1])
    with pytest.raises(SaslError):
        backend.decode_plain(b"A" * 12292)


def test_text_without_utf8_form_leaves_no_error_pending(backend: ModuleType) -> None:
    with pytest.raises(UnicodeEncodeError):
        backend.constant_time_eq("\ud800", "a")
    with pytest.raises(UnicodeEncodeError):
        backend.constant_time_eq(b"a", "\ud800")
    assert backend.constant_time_eq("a", "a") is True
