"""The scheme table: one per backend (Rust ``TABLE``, the twin's ``TABLE``), equal row for row."""

from __future__ import annotations

import base64
from types import ModuleType

import pytest

from seikyou_auth.errors import UnsupportedScheme

SUFFIXES = ["", ".b64", ".BASE64", ".hex", ".Hex"]
# Names Dovecot 2.3 knows that neither table has: refused alike, never guessed.
UNKNOWN = ["MD5-CRYPT", "SHA1", "SSHA", "SMD5", "LDAP-MD5", "DIGEST-MD5", "SCRAM-SHA-256", ""]
# Every row as it stands: (name, label, encoding, raw length, slow, cost, can generate).
ROWS = {
    "ARGON2ID": ("ARGON2ID", "ARGON2ID", "none", 0, True, 6, True),
    "BLF-CRYPT": ("BLF-CRYPT", "BLF-CRYPT", "none", 0, True, 4, True),
    "CLEAR": ("CLEAR", "CLEAR", "none", 0, False, 0, True),
    "CRAM-MD5": ("CRAM-MD5", "CRAM-MD5", "hex", 32, False, 0, True),
    "CRYPT": ("CRYPT", "CRYPT", "none", 0, True, 5, False),
    "PBKDF2": ("PBKDF2", "PBKDF2", "none", 0, True, 2, True),
    "PLAIN": ("PLAIN", "PLAIN", "none", 0, False, 0, True),
    "SHA256-CRYPT": ("SHA256-CRYPT", "SHA256-CRYPT", "none", 0, True, 3, True),
    "SHA512-CRYPT": ("SHA512-CRYPT", "SHA512-CRYPT", "none", 0, True, 5, True),
    "SSHA256": ("SSHA256", "SSHA256", "base64", 0, False, 1, True),
    "SSHA512": ("SSHA512", "SSHA512", "base64", 0, False, 1, True),
}


def test_the_two_tables_are_equal(both_backends: tuple[ModuleType, ModuleType]) -> None:
    rust, python = both_backends
    assert rust.SCHEMES == python.SCHEMES
    for name in ROWS:
        for suffix in SUFFIXES:
            for spelling in (name + suffix, (name + suffix).lower()):
                assert rust.scheme_info(spelling) == python.scheme_info(spelling), spelling


def test_each_row_is_what_dovecot_uses(backend: ModuleType) -> None:
    assert {backend.scheme_info(name)[0]: backend.scheme_info(name) for name in ROWS} == ROWS
    generating = tuple(name for name, row in ROWS.items() if row[6])
    assert backend.SCHEMES == generating


@pytest.mark.parametrize("name", [*UNKNOWN, "PLAIN.", "PLAIN.x", "PLAIN.b64.hex", "pla\u0131n"])
def test_unknown_names_and_suffixes_are_refused(backend: ModuleType, name: str) -> None:
    with pytest.raises(UnsupportedScheme):
        backend.scheme_info(name)


@pytest.mark.parametrize(
    ("name", "label", "encoding"),
    [("ssha256.hex", "SSHA256.HEX", "hex"), ("plain.b64", "PLAIN.B64", "base64")],
)
def test_a_suffix_sets_the_label_and_encoding(
    backend: ModuleType, name: str, label: str, encoding: str
) -> None:
    assert backend.scheme_info(name)[1:3] == (label, encoding)


def test_parse_stored_decodes_by_the_row(backend: ModuleType) -> None:
    state = bytes(range(32))
    assert backend.parse_stored("{PLAIN}secret") == ("PLAIN", b"secret")
    assert backend.parse_stored("{plain.hex}736563726574") == ("plain.hex", b"secret")
    assert backend.parse_stored("{CRAM-MD5}" + state.hex()) == ("CRAM-MD5", state)
    # The raw length decides: without a suffix a CRAM-MD5 value of another length is base64.
    assert backend.parse_stored("{CRAM-MD5}" + base64.b64encode(state).decode()) == (
        "CRAM-MD5",
        state,
    )
    assert backend.parse_stored("{CRAM-MD5}" + state.hex()[:-2]) == ("CRAM-MD5", None)
    assert backend.parse_stored("$6$salt$hash") == ("CRYPT", b"$6$salt$hash")


@pytest.mark.parametrize(
    "stored",
    ["{FOO}bar", "$1$salt$hash", "{SSHA256}not base64!", "{PLAIN.HEX}abc", "{PLAIN}\ud800"],
)
def test_parse_stored_never_raises_for_what_it_holds(backend: ModuleType, stored: str) -> None:
    scheme, raw = backend.parse_stored(stored)
    assert raw is None
    assert scheme in stored or scheme == "MD5-CRYPT"


@pytest.mark.parametrize("function", ["parse_stored", "scheme_info"])
def test_non_text_is_a_type_error(backend: ModuleType, function: str) -> None:
    with pytest.raises(TypeError):
        getattr(backend, function)(b"{PLAIN}x")
