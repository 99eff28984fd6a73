"""Stored values at the edges of every format verify exactly as doveadm decided (recorded in
tests/fixtures/dovecot_edge_cases.json with the command); bad input is False or
UnsupportedScheme, never a crash."""

from __future__ import annotations

import sys
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import doveadm_verifies, load_fixture

from seikyou_auth.errors import UnsupportedScheme

EDGE = load_fixture("dovecot_edge_cases.json")
PASSWORD = EDGE["password"].encode()


# crypt(3) formats Dovecot's libxcrypt has and this package does not: UnsupportedScheme, so an
# operator learns why the account cannot log in (Dovecot itself would verify them).
NOT_IMPLEMENTED_CRYPT = ("$1$", "$y$", "$gy$", "$7$", "$sha1$", "$md5", "$3$", "_")
CRYPT_SCHEMES = ("CRYPT", "SHA256-CRYPT", "SHA512-CRYPT")


def _expected(entry: dict[str, object]) -> bool | type[Exception]:
    scheme, _, value = str(entry["stored"])[1:].partition("}")
    if "Unknown scheme" in str(entry["dovecot_says"]):
        return UnsupportedScheme
    if scheme.upper() in CRYPT_SCHEMES and value.startswith(NOT_IMPLEMENTED_CRYPT):
        return UnsupportedScheme
    return bool(entry["verified"])


@pytest.mark.parametrize("entry", EDGE["entries"], ids=lambda entry: entry["stored"][:40])
def test_edge_case_verifies_as_dovecot_decided(
    backend: ModuleType, entry: dict[str, object]
) -> None:
    stored = str(entry["stored"])
    expected = _expected(entry)
    if expected is UnsupportedScheme:
        with pytest.raises(UnsupportedScheme):
            backend.verify_password(stored, PASSWORD)
    else:
        assert backend.verify_password(stored, PASSWORD) is expected, entry["dovecot_says"]


def test_recorded_answers_still_match_live_doveadm() -> None:
    # A sample keeps this fast; the full table was recorded from this same doveadm.
    for entry in EDGE["entries"][::7]:
        assert doveadm_verifies(str(entry["stored"]), EDGE["password"]) is entry["verified"]


CRYPT_ENTRIES = [entry for entry in EDGE["entries"] if entry["stored"].startswith("{CRYPT}")]


@pytest.mark.parametrize("entry", CRYPT_ENTRIES, ids=lambda entry: entry["stored"][:40])
def test_a_value_without_prefix_is_crypt(backend: ModuleType, entry: dict[str, object]) -> None:
    bare = str(entry["stored"])[len("{CRYPT}") :]
    if _expected(entry) is UnsupportedScheme:
        with pytest.raises(UnsupportedScheme):
            backend.verify_password(bare, PASSWORD)
    else:
        assert backend.verify_password(bare, PASSWORD) is entry["verified"]


@pytest.mark.parametrize(
    "scheme", ["FOO", "SHA1", "MD5-CRYPT", "PLAIN.B32", "", "PLAIN.", ".HEX", "CRYPT"]
)
def test_unknown_or_unsupported_scheme_cannot_hash(backend: ModuleType, scheme: str) -> None:
    with pytest.raises(UnsupportedScheme):
        backend.hash_password(b"secret", scheme)


@pytest.mark.parametrize(
    ("function", "args"),
    [
        ("hash_password", ("secret", "PLAIN")),
        ("hash_password", (b"secret", b"PLAIN")),
        ("verify_password", (b"{PLAIN}secret", b"secret")),
        ("verify_password", ("{PLAIN}secret", "secret")),
        ("verify_password", ("{PLAIN}secret", bytearray(b"secret"))),
    ],
)
def test_wrong_argument_types_raise_type_error(
    backend: ModuleType, function: str, args: tuple[object, ...]
) -> None:
    with pytest.raises(TypeError):
        getattr(backend, function)(*args)


def test_plain_refuses_a_password_it_cannot_write_as_text(backend: ModuleType) -> None:
    with pytest.raises(ValueError, match="UTF-8"):
        backend.hash_password(b"\xff\xfe", "PLAIN")
    stored = backend.hash_password(b"\xff\xfe", "PLAIN.B64")
    assert stored == "{PLAIN.B64}//4="
    assert backend.verify_password(stored, b"\xff\xfe")


stored_values = st.one_of(
    st.text(max_size=120),
    st.builds(
        lambda scheme, body: "{" + scheme + "}" + body,
        st.sampled_from(
            [
                "PLAIN",
                "CRAM-MD5",
                "SSHA256",
                "SSHA512.HEX",
                "PLAIN.B64",
                "SHA512-CRYPT",
                "SHA256-CRYPT",
                "CRYPT",
                "PBKDF2",
                "BLF-CRYPT",
                "CRAM-MD5.B64",
                "SSHA256.B64",
            ]
        ),
        st.text(alphabet="$0123456789abcdefABCDEF./+=rounds:zZ \t", max_size=100),
    ),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stored=stored_values, password=st.binary(max_size=40))
def test_arbitrary_stored_values_never_crash(
    backend: ModuleType, stored: str, password: bytes
) -> None:
    try:
        result = backend.verify_password(stored, password)
    except UnsupportedScheme:
        return
    assert isinstance(result, bool)


def test_missing_bcrypt_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from seikyou_auth import _pure

    monkeypatch.setitem(sys.modules, "bcrypt", None)
    for call in (
        lambda: _pure.hash_password(b"secret", "BLF-CRYPT"),
        lambda: _pure.verify_password("{BLF-CRYPT}$2y$05$" + "a" * 53, b"secret"),
        lambda: _pure.verify_password("$2y$05$" + "a" * 53, b"secret"),
    ):
        with pytest.raises(UnsupportedScheme, match=r"pip install seikyou-auth\[blf\]"):
            call()
    assert _pure.verify_password("{PLAIN}secret", b"secret")


def test_missing_argon2_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from seikyou_auth import _pure

    monkeypatch.setitem(sys.modules, "argon2", None)
    with pytest.raises(UnsupportedScheme, match=r"pip install seikyou-auth\[argon2\]"):
        _pure.hash_password(b"secret", "ARGON2ID")
    with pytest.raises(UnsupportedScheme, match=r"pip install seikyou-auth\[argon2\]"):
        _pure.verify_password("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$x$y", b"secret")
