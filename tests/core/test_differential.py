"""Hypothesis differential tests: each backend against hmac/hashlib/base64, and the two backends
against each other on arbitrary bytes (same value, or the same error class)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seikyou_auth._pure import _md5
from seikyou_auth.errors import SaslError

# The backend fixtures return immutable modules, so sharing them across examples is safe.
fixture_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

keys = st.one_of(
    st.just(b""),
    st.binary(min_size=1, max_size=64),
    st.binary(min_size=65, max_size=300),
    st.sampled_from([b"\x00" * 64, b"\xff" * 65, b"tanstaaftanstaaf"]),
)
messages = st.one_of(
    st.binary(max_size=300),
    # Lengths around the MD5 padding boundaries (55, 56, 64 octets after the 64-octet key block).
    st.integers(min_value=50, max_value=130).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
)
base64ish = st.text(alphabet="AQgw+/=*-_ .\t\r\n\x00Zz019", max_size=24).map(str.encode)
base64_lines = st.one_of(
    st.binary(max_size=64).map(base64.b64encode),
    base64ish,
    st.binary(max_size=32),
    st.tuples(
        st.binary(max_size=48).map(base64.b64encode), st.integers(0, 80), st.binary(max_size=2)
    ).map(lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]),
)
field_octets = st.sampled_from(
    [b"\x00", b"\xff", b"\xc3", b"\xa9", b"a", b" ", b"\r", b"\n", "é".encode()]
)
sasl_messages = st.one_of(
    st.binary(max_size=300),
    st.lists(field_octets, max_size=40).map(b"".join),
    st.tuples(st.integers(0, 300), st.integers(0, 300), st.integers(0, 300)).map(
        lambda n: b"z" * n[0] + b"\x00" + b"u" * n[1] + b"\x00" + b"p" * n[2]
    ),
)
hex_digests = st.text(alphabet="0123456789abcdefABCDEFg ", min_size=30, max_size=34)
cram_messages = st.one_of(
    sasl_messages,
    st.tuples(st.binary(max_size=20), hex_digests.map(str.encode)).map(
        lambda t: t[0] + b" " + t[1]
    ),
)


def outcome(function: Callable[..., Any], *arguments: Any) -> tuple[str, Any]:
    try:
        return "value", function(*arguments)
    except Exception as exc:  # the class is what is compared
        return "error", type(exc)


@fixture_settings
@given(key=keys, message=messages)
def test_cram_md5_matches_hmac(backend: ModuleType, key: bytes, message: bytes) -> None:
    expected = hmac.new(key, message, "md5").hexdigest()
    assert backend.cram_md5_digest(key, message) == expected
    assert backend.cram_md5_verify(key, message, expected)
    state = backend.cram_md5_prepare(key)
    assert len(state) == 32
    assert backend.cram_md5_verify_prepared(state, message, expected)
    wrong = f"{int(expected[0], 16) ^ 1:x}{expected[1:]}"
    assert not backend.cram_md5_verify(key, message, wrong)
    assert not backend.cram_md5_verify_prepared(state, message, wrong)
    assert backend.cram_md5_response("user name", key, message) == b"user name " + expected.encode()


@fixture_settings
@given(timestamp=messages, secret=keys)
def test_apop_matches_hashlib(backend: ModuleType, timestamp: bytes, secret: bytes) -> None:
    expected = hashlib.md5(timestamp + secret).hexdigest()
    assert backend.apop_digest(timestamp, secret) == expected
    assert backend.apop_verify(timestamp, secret, expected.upper())
    assert not backend.apop_verify(timestamp, secret + b"!", expected)


@fixture_settings
@given(data=st.binary(max_size=9216))
def test_base64_round_trip_matches_stdlib(backend: ModuleType, data: bytes) -> None:
    encoded = backend.encode_challenge(data)
    assert encoded == base64.b64encode(data)
    assert backend.decode_response(encoded) == data


def strict_stdlib_decode(line: bytes) -> bytes | None:
    """The stdlib's idea of canonical RFC 4648: validated, and re-encoding gives the line back."""
    try:
        decoded = base64.b64decode(line, validate=True)
    except ValueError:
        return None
    return decoded if base64.b64encode(decoded) == line else None


@fixture_settings
@given(line=base64_lines)
def test_decode_response_agrees_with_strict_stdlib(backend: ModuleType, line: bytes) -> None:
    if line in (b"=", b"*"):
        return
    expected = strict_stdlib_decode(line)
    result = outcome(backend.decode_response, line)
    assert result == (("value", expected) if expected is not None else ("error", SaslError))


@fixture_settings
@given(a=st.binary(max_size=40), b=st.binary(max_size=40))
def test_constant_time_eq_matches_equality(backend: ModuleType, a: bytes, b: bytes) -> None:
    assert backend.constant_time_eq(a, b) is (a == b)
    assert backend.constant_time_eq(a, a) is True


@fixture_settings
@given(
    authzid=st.text(max_size=40),
    authcid=st.text(min_size=1, max_size=40),
    passwd=st.binary(min_size=1, max_size=80).filter(lambda p: b"\x00" not in p),
)
def test_plain_round_trip(backend: ModuleType, authzid: str, authcid: str, passwd: bytes) -> None:
    message = authzid.encode() + b"\x00" + authcid.encode() + b"\x00" + passwd
    if "\x00" in authzid or "\x00" in authcid:
        assert outcome(backend.parse_plain, message)[0] == "error"
    else:
        assert backend.parse_plain(message) == (authzid, authcid, passwd)


# --- the two backends against each other ---------------------------------------------------------


@fixture_settings
@given(line=base64_lines)
def test_backends_decode_alike(rust_and_python: tuple[ModuleType, ModuleType], line: bytes) -> None:
    rust, python = rust_and_python
    assert outcome(rust.decode_response, line) == outcome(python.decode_response, line)


@fixture_settings
@given(message=sasl_messages)
def test_backends_parse_alike(
    rust_and_python: tuple[ModuleType, ModuleType], message: bytes
) -> None:
    rust, python = rust_and_python
    for name in (
        "parse_plain",
        "parse_login_username",
        "parse_login_password",
        "parse_cram_md5_response",
    ):
        assert outcome(getattr(rust, name), message) == outcome(getattr(python, name), message), (
            name
        )


@fixture_settings
@given(message=cram_messages)
def test_backends_parse_cram_alike(
    rust_and_python: tuple[ModuleType, ModuleType], message: bytes
) -> None:
    rust, python = rust_and_python
    assert outcome(rust.parse_cram_md5_response, message) == outcome(
        python.parse_cram_md5_response, message
    )


@fixture_settings
@given(key=keys, message=messages, digest=hex_digests)
def test_backends_digest_alike(
    rust_and_python: tuple[ModuleType, ModuleType], key: bytes, message: bytes, digest: str
) -> None:
    rust, python = rust_and_python
    assert rust.cram_md5_prepare(key) == python.cram_md5_prepare(key)
    assert rust.cram_md5_digest(key, message) == python.cram_md5_digest(key, message)
    assert rust.apop_digest(message, key) == python.apop_digest(message, key)
    state = python.cram_md5_prepare(key)
    for name, arguments in [
        ("cram_md5_verify", (key, message, digest)),
        ("cram_md5_verify_prepared", (state, message, digest)),
        ("cram_md5_verify_prepared", (state[:31], message, digest)),
        ("apop_verify", (message, key, digest)),
    ]:
        assert outcome(getattr(rust, name), *arguments) == outcome(
            getattr(python, name), *arguments
        )


@fixture_settings
@given(value=st.sampled_from([bytearray(b"QQ=="), memoryview(b"QQ=="), 0, None, ["QQ=="]]))
def test_backends_agree_on_non_bytes(
    rust_and_python: tuple[ModuleType, ModuleType], value: object
) -> None:
    rust, python = rust_and_python
    for name in ("decode_response", "parse_plain", "encode_challenge", "cram_md5_prepare"):
        assert outcome(getattr(rust, name), value) == outcome(getattr(python, name), value), name


# --- the twin's own MD5 --------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400))
def test_pure_md5_matches_hashlib(data: bytes) -> None:
    assert _md5.md5(data) == hashlib.md5(data).digest()


@settings(max_examples=100, deadline=None)
@given(prefix_blocks=st.integers(0, 3), rest=st.binary(max_size=200), seed=st.binary(min_size=1))
def test_pure_md5_resumes_from_a_saved_state(prefix_blocks: int, rest: bytes, seed: bytes) -> None:
    prefix = (seed * 256)[: prefix_blocks * 64]
    state = _md5.IV
    for offset in range(0, len(prefix), 64):
        state = _md5.compress(state, _md5.block_words(prefix[offset : offset + 64]))
    saved = _md5.state_from_bytes(_md5.state_bytes(state))
    final = _md5.finish(saved, rest, len(prefix))
    assert _md5.state_bytes(final) == hashlib.md5(prefix + rest).digest()


@fixture_settings
@given(username=st.text(min_size=1, max_size=40), key=keys, challenge=messages)
def test_cram_md5_response_parses_back(
    backend: ModuleType, username: str, key: bytes, challenge: bytes
) -> None:
    response = backend.cram_md5_response(username, key, challenge)
    digest = hmac.new(key, challenge, "md5").hexdigest()
    assert backend.parse_cram_md5_response(response) == (username, digest)
