"""Argument types and edge cases: str for bytes, bad states, malformed digests, bad hostnames."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

CHALLENGE = b"<12345678901234567890.1700000000@ma1.seikyou.ne.jp>"
SECRET = b"tanstaaftanstaaf"
DIGEST = "0123456789abcdef0123456789abcdef"

# (function name, valid arguments, indexes of the arguments that must be bytes)
BYTES_ARGUMENTS: list[tuple[str, tuple[Any, ...], tuple[int, ...]]] = [
    ("decode_response", (b"QQ==",), (0,)),
    ("encode_challenge", (b"data",), (0,)),
    ("parse_plain", (b"\x00u\x00p",), (0,)),
    ("parse_login_username", (b"user",), (0,)),
    ("parse_login_password", (b"pass",), (0,)),
    ("parse_cram_md5_response", (b"u " + DIGEST.encode(),), (0,)),
    ("cram_md5_digest", (SECRET, CHALLENGE), (0, 1)),
    ("cram_md5_response", ("tim", SECRET, CHALLENGE), (1, 2)),
    ("cram_md5_prepare", (SECRET,), (0,)),
    ("cram_md5_verify", (SECRET, CHALLENGE, DIGEST), (0, 1)),
    ("cram_md5_verify_prepared", (bytes(32), CHALLENGE, DIGEST), (0, 1)),
    ("apop_digest", (CHALLENGE, SECRET), (0, 1)),
    ("apop_verify", (CHALLENGE, SECRET, DIGEST), (0, 1)),
]

STR_ARGUMENTS: list[tuple[str, tuple[Any, ...], tuple[int, ...]]] = [
    ("cram_md5_challenge", ("ma1.seikyou.ne.jp",), (0,)),
    ("apop_timestamp", ("ma1.seikyou.ne.jp",), (0,)),
    ("cram_md5_response", ("tim", SECRET, CHALLENGE), (0,)),
    ("cram_md5_verify", (SECRET, CHALLENGE, DIGEST), (2,)),
    ("cram_md5_verify_prepared", (bytes(32), CHALLENGE, DIGEST), (2,)),
    ("apop_verify", (CHALLENGE, SECRET, DIGEST), (2,)),
]


def _replaced(arguments: tuple[Any, ...], index: int, value: Any) -> tuple[Any, ...]:
    return (*arguments[:index], value, *arguments[index + 1 :])


@pytest.mark.parametrize(("name", "arguments", "indexes"), BYTES_ARGUMENTS)
def test_str_where_bytes_required_is_type_error(
    backend: ModuleType, name: str, arguments: tuple[Any, ...], indexes: tuple[int, ...]
) -> None:
    function: Callable[..., Any] = getattr(backend, name)
    function(*arguments)
    for index in indexes:
        as_text = arguments[index].decode("latin-1")
        with pytest.raises(TypeError):
            function(*_replaced(arguments, index, as_text))
        with pytest.raises(TypeError):
            function(*_replaced(arguments, index, None))


@pytest.mark.parametrize(("name", "arguments", "indexes"), STR_ARGUMENTS)
def test_bytes_where_str_required_is_type_error(
    backend: ModuleType, name: str, arguments: tuple[Any, ...], indexes: tuple[int, ...]
) -> None:
    function: Callable[..., Any] = getattr(backend, name)
    function(*arguments)
    for index in indexes:
        with pytest.raises(TypeError):
            function(*_replaced(arguments, index, arguments[index].encode()))


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_prepared_state_must_be_32_octets(backend: ModuleType, length: int) -> None:
    digest = backend.cram_md5_digest(SECRET, CHALLENGE)
    with pytest.raises(ValueError) as raised:
        backend.cram_md5_verify_prepared(bytes(length), CHALLENGE, digest)
    assert raised.type is ValueError
    with pytest.raises(ValueError):
        backend.cram_md5_verify_prepared(bytes(length), CHALLENGE, "not a digest")


MALFORMED_DIGESTS = [
    "",
    "0" * 31,
    "0" * 33,
    "g" * 32,
    " " + "0" * 31,
    "0" * 31 + "\n",
    "\u0660" * 32,  # Arabic-Indic zeros: str.isdigit() is true, hex they are not
    "0x" + "0" * 30,
    "é" * 32,
]


def test_verifiers_return_false_for_malformed_digests(backend: ModuleType) -> None:
    state = backend.cram_md5_prepare(SECRET)
    real = backend.cram_md5_digest(SECRET, CHALLENGE)
    apop = backend.apop_digest(CHALLENGE, SECRET)
    for digest in [*MALFORMED_DIGESTS, real[:31], real + "0", f" {real}", f"{real} "]:
        assert backend.cram_md5_verify(SECRET, CHALLENGE, digest) is False
        assert backend.cram_md5_verify_prepared(state, CHALLENGE, digest) is False
        assert backend.apop_verify(CHALLENGE, SECRET, digest) is False
    assert backend.cram_md5_verify(SECRET, CHALLENGE, real) is True
    assert backend.cram_md5_verify_prepared(state, CHALLENGE, real) is True
    assert backend.apop_verify(CHALLENGE, SECRET, apop.upper()) is True


def test_mixed_case_digest_verifies(backend: ModuleType) -> None:
    real = backend.cram_md5_digest(SECRET, CHALLENGE)
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(real))
    assert backend.cram_md5_verify(SECRET, CHALLENGE, mixed)
    assert backend.cram_md5_verify_prepared(backend.cram_md5_prepare(SECRET), CHALLENGE, mixed)


def test_constant_time_eq(backend: ModuleType) -> None:
    assert backend.constant_time_eq(b"", b"") is True
    assert backend.constant_time_eq(b"abc", b"abc") is True
    assert backend.constant_time_eq(b"abc", b"abd") is False
    assert backend.constant_time_eq(b"abc", b"abcd") is False
    assert backend.constant_time_eq(b"\x00", b"") is False


def test_constant_time_eq_takes_text_as_its_utf8_form(backend: ModuleType) -> None:
    """Digests held as ``str`` compare without an ``encode()`` each (nor a copy in Rust)."""
    assert backend.constant_time_eq(DIGEST, DIGEST.upper().lower()) is True
    assert backend.constant_time_eq(DIGEST, DIGEST[:-1] + "0") is (DIGEST[-1] == "0")
    assert backend.constant_time_eq("パス", "パス".encode()) is True
    assert backend.constant_time_eq("é", b"\xe9") is False
    assert backend.constant_time_eq("", b"") is True
    with pytest.raises(UnicodeEncodeError):
        backend.constant_time_eq("\ud800", "\ud800")


class _Bytes(bytes):
    pass


class _Text(str):
    __slots__ = ()


def test_constant_time_eq_takes_subclasses_of_bytes_and_str(backend: ModuleType) -> None:
    assert backend.constant_time_eq(_Bytes(b"abc"), _Text("abc")) is True
    assert backend.constant_time_eq(_Text("abc"), b"abd") is False


@pytest.mark.parametrize("other", [None, 1, bytearray(b"a"), memoryview(b"a"), ["a"]])
def test_constant_time_eq_refuses_other_types(backend: ModuleType, other: object) -> None:
    for arguments in ((other, b"a"), (b"a", other), (other, "a")):
        with pytest.raises(TypeError, match="must be bytes or str"):
            backend.constant_time_eq(*arguments)


def test_result_types(backend: ModuleType) -> None:
    assert type(backend.encode_challenge(b"x")) is bytes
    assert type(backend.decode_response(b"eA==")) is bytes
    assert type(backend.cram_md5_digest(SECRET, CHALLENGE)) is str
    assert type(backend.apop_digest(CHALLENGE, SECRET)) is str
    assert type(backend.cram_md5_response("tim", SECRET, CHALLENGE)) is bytes
    assert type(backend.cram_md5_prepare(SECRET)) is bytes
    assert type(backend.cram_md5_challenge("localhost")) is bytes
    assert type(backend.apop_timestamp("localhost")) is bytes
    authzid, authcid, passwd = backend.parse_plain(b"\x00u\x00p")
    assert (type(authzid), type(authcid), type(passwd)) == (str, str, bytes)


def test_encode_challenge_of_empty_data(backend: ModuleType) -> None:
    assert backend.encode_challenge(b"") == b""


@pytest.mark.parametrize(
    "hostname",
    [
        "",
        "bad host",
        "host>",
        "<host",
        "a@b",
        "host\r\nRSET",
        "ex..ample",
        ".example",
        "example.",
        "ホスト",
    ],
)
def test_msg_id_generators_refuse_a_hostname_that_breaks_the_syntax(
    backend: ModuleType, hostname: str
) -> None:
    with pytest.raises(ValueError):
        backend.cram_md5_challenge(hostname)
    with pytest.raises(ValueError):
        backend.apop_timestamp(hostname)
