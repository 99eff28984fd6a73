"""Hypothesis differential tests: each backend against hmac/hashlib/base64, and the two backends
against each other on arbitrary bytes (same value, or the same error class)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seikyou_auth._pure import _md5
from seikyou_auth.errors import SaslError, UnsupportedScheme

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
def test_backends_decode_alike(both_backends: tuple[ModuleType, ModuleType], line: bytes) -> None:
    rust, python = both_backends
    assert outcome(rust.decode_response, line) == outcome(python.decode_response, line)


@fixture_settings
@given(
    line=st.one_of(
        base64_lines,
        sasl_messages.map(base64.b64encode),
        st.binary(max_size=20).map(base64.b64encode),
    )
)
def test_decode_plain_is_the_two_calls_fused(
    both_backends: tuple[ModuleType, ModuleType], line: bytes
) -> None:
    for backend in both_backends:

        def two_calls(line: bytes, backend: ModuleType = backend) -> Any:
            return backend.parse_plain(backend.decode_response(line))

        assert outcome(backend.decode_plain, line) == outcome(two_calls, line), backend.__name__
    rust, python = both_backends
    assert outcome(rust.decode_plain, line) == outcome(python.decode_plain, line)


@fixture_settings
@given(message=sasl_messages)
def test_backends_parse_alike(both_backends: tuple[ModuleType, ModuleType], message: bytes) -> None:
    rust, python = both_backends
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
    both_backends: tuple[ModuleType, ModuleType], message: bytes
) -> None:
    rust, python = both_backends
    assert outcome(rust.parse_cram_md5_response, message) == outcome(
        python.parse_cram_md5_response, message
    )


@fixture_settings
@given(key=keys, message=messages, digest=hex_digests)
def test_backends_digest_alike(
    both_backends: tuple[ModuleType, ModuleType], key: bytes, message: bytes, digest: str
) -> None:
    rust, python = both_backends
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
    both_backends: tuple[ModuleType, ModuleType], value: object
) -> None:
    rust, python = both_backends
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


# --- every other export, both backends on arbitrary input ----------------------------------------

# Code points the two backends could meet differently: lone surrogates (PyO3 cannot make them
# UTF-8), and letters whose Unicode upper case is ASCII: dotless i, long s, the "st" ligature.
SURROGATES_AND_CONTROLS = ["\ud800", "\udfff", "\u212a", "é", "\x00", "\r\n", " "]
UPPER_CASE_IS_ASCII = ["\u0131", "\u017f", "\ufb06"]


def texts(odd: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(st.characters(), st.sampled_from(odd)), max_size=24).map("".join)


any_text = texts(SURROGATES_AND_CONTROLS + UPPER_CASE_IS_ASCII)
hostnames = st.one_of(
    st.from_regex(r"[A-Za-z0-9_-]{1,12}(\.[A-Za-z0-9_-]{1,12}){0,3}", fullmatch=True),
    st.text(alphabet="az09._- <>@\r\n\x00é[]:", max_size=20),
    any_text,
    st.integers(1, 5).map(lambda n: ".".join(["h" * 50] * n)),
)
scheme_names = st.one_of(
    st.tuples(
        st.sampled_from(
            "PLAIN CLEAR CRAM-MD5 SHA256-CRYPT SHA512-CRYPT SSHA256 SSHA512 PBKDF2 BLF-CRYPT"
            " ARGON2ID CRYPT MD5-CRYPT SHA1".split()
        ),
        st.sampled_from(["", ".b64", ".BASE64", ".hex", ".Hex", ".x", ".b64.hex", "."]),
        st.booleans(),
    ).map(lambda t: (t[0] + t[1]).lower() if t[2] else t[0] + t[1]),
    st.tuples(
        st.sampled_from(["plain", "ssha256.hex", "crypt", "pbkdf2.b64"]),
        st.sampled_from(SURROGATES_AND_CONTROLS),
    ).map(lambda t: t[0].replace("i", t[1]).replace("s", t[1], 1)),
    any_text,
)
crypt_text = st.text(alphabet="./0123456789ABCXYZabcxyz$:;*!\\ é", max_size=90)
# Shaped like each scheme's values, with minimal costs (the twin hashes in Python).
stored_values = st.one_of(
    st.tuples(
        st.sampled_from(["$5$", "$6$", "$5$rounds=1000$", "$6$rounds=1000$", "$6$rounds=0999$"]),
        crypt_text,
    ).map("".join),
    st.tuples(
        st.sampled_from(["$2a$04$", "$2b$04$", "$2x$04$", "$2y$04$", "$2y$4$", "$2q$04$"]),
        st.text(alphabet="./0123456789ABCXYZabcxyz", min_size=50, max_size=56),
    ).map("".join),
    st.tuples(
        st.sampled_from(
            ["$argon2id$v=19$m=8,t=1,p=1$", "$argon2i$v=19$m=8,t=1,p=1$", "$argon2id$m=8,t=1,p=1$"]
        ),
        st.binary(max_size=16).map(lambda b: base64.b64encode(b).decode().rstrip("=")),
        st.binary(max_size=32).map(lambda b: base64.b64encode(b).decode().rstrip("=")),
    ).map(lambda t: f"{t[0]}{t[1]}${t[2]}"),
    st.tuples(
        st.text(alphabet="./0123456789Aaz$", max_size=18),
        st.sampled_from(["1", "2", "01", "", "x"]),
        st.text(alphabet="0123456789abcdefABCDEFg", min_size=38, max_size=42),
    ).map(lambda t: f"$1${t[0]}${t[1]}${t[2]}"),
    st.text(alphabet="ABCXYZabcxyz0123456789+/= \t\r\n", max_size=100),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=62, max_size=66),
    any_text,
)
stored_passwords = st.one_of(st.binary(max_size=40), st.sampled_from([b"test", b"", b"\x00"]))


def stored_with(name: str, value: str, braces: bool) -> str:
    return f"{{{name}}}{value}" if braces else value


@fixture_settings
@given(hostname=hostnames)
def test_backends_build_msg_ids_alike(
    both_backends: tuple[ModuleType, ModuleType], hostname: str
) -> None:
    rust, python = both_backends
    for name in ("cram_md5_challenge", "apop_timestamp"):
        rust_result = outcome(getattr(rust, name), hostname)
        python_result = outcome(getattr(python, name), hostname)
        assert rust_result[0] == python_result[0], (name, rust_result, python_result)
        if rust_result[0] == "error":
            assert rust_result == python_result, name
            continue
        shape = rb"<\d{20}\.\d{10,}@" + re.escape(hostname.encode()) + rb">"
        assert re.fullmatch(shape, rust_result[1]), (name, rust_result)
        assert re.fullmatch(shape, python_result[1]), (name, python_result)


@settings(fixture_settings, max_examples=300)
@given(name=scheme_names, value=stored_values, braces=st.booleans(), password=stored_passwords)
def test_backends_verify_any_stored_value_alike(
    both_backends: tuple[ModuleType, ModuleType],
    name: str,
    value: str,
    braces: bool,
    password: bytes,
) -> None:
    rust, python = both_backends
    stored = stored_with(name, value, braces)
    assert outcome(rust.verify_password, stored, password) == outcome(
        python.verify_password, stored, password
    )


@fixture_settings
@given(name=scheme_names, password=st.binary(max_size=40))
def test_backends_hash_alike(
    both_backends: tuple[ModuleType, ModuleType], name: str, password: bytes
) -> None:
    """Same refusals, and what one backend hashes the other verifies."""
    rust, python = both_backends
    if name.upper().startswith("ARGON2ID"):
        password = password[:4]  # 64 MiB per hash: keep these examples few and cheap otherwise
    rust_result = outcome(rust.hash_password, password, name)
    python_result = outcome(python.hash_password, password, name)
    assert rust_result[0] == python_result[0], (rust_result, python_result)
    if rust_result[0] == "error":
        assert rust_result == python_result
        return
    for stored, other in ((rust_result[1], python), (python_result[1], rust)):
        assert stored.split("}")[0] == python_result[1].split("}")[0]
        assert other.verify_password(stored, password) is True, stored
        assert other.verify_password(stored, password + b"!") is False, stored


@fixture_settings
@given(key=keys, message=messages, digest=any_text, username=any_text)
def test_backends_take_any_text_alike(
    both_backends: tuple[ModuleType, ModuleType],
    key: bytes,
    message: bytes,
    digest: str,
    username: str,
) -> None:
    rust, python = both_backends
    state = python.cram_md5_prepare(key)
    for name, arguments in [
        ("cram_md5_verify", (key, message, digest)),
        ("cram_md5_verify_prepared", (state, message, digest)),
        ("cram_md5_verify_prepared", (state[:31], message, digest)),
        ("apop_verify", (message, key, digest)),
        ("cram_md5_response", (username, key, message)),
    ]:
        assert outcome(getattr(rust, name), *arguments) == outcome(
            getattr(python, name), *arguments
        ), name


# Dovecot and both backends compare scheme names in ASCII only: str.upper() would not.
@pytest.mark.parametrize("name", ["pla\u0131n", "\u017fsha256", "PLAIN.ba\u017fe64"])
def test_scheme_names_are_ascii_case_insensitive(
    both_backends: tuple[ModuleType, ModuleType], name: str
) -> None:
    for backend in both_backends:
        assert outcome(backend.verify_password, f"{{{name}}}test", b"test") == (
            "error",
            UnsupportedScheme,
        ), backend.__name__
        assert outcome(backend.hash_password, b"test", name) == ("error", UnsupportedScheme)


@settings(fixture_settings, max_examples=300)
@given(name=scheme_names, value=stored_values, braces=st.booleans())
def test_backends_parse_any_stored_value_alike(
    both_backends: tuple[ModuleType, ModuleType], name: str, value: str, braces: bool
) -> None:
    rust, python = both_backends
    stored = stored_with(name, value, braces)
    assert outcome(rust.parse_stored, stored) == outcome(python.parse_stored, stored)
    assert outcome(rust.scheme_info, name) == outcome(python.scheme_info, name)
