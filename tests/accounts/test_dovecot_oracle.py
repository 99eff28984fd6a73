"""Dovecot's doveadm is the oracle: our hashes verify in it, its hashes verify in ours."""

from __future__ import annotations

import re
from types import ModuleType

import pytest
from oracle import doveadm_pw, doveadm_verifies, load_fixture

PASSWORD = "pässwörd 日本 :$"
SCHEMES = (
    "ARGON2ID", "BLF-CRYPT", "CLEAR", "CRAM-MD5", "PBKDF2", "PLAIN", "SHA256-CRYPT",
    "SHA512-CRYPT", "SSHA256", "SSHA512",
)  # fmt: skip
ENCODED = (
    "PLAIN.B64", "PLAIN.HEX", "CLEAR.BASE64", "CRAM-MD5.B64", "CRAM-MD5.HEX", "SSHA256.HEX",
    "SSHA512.B64", "SHA512-CRYPT.HEX", "SHA256-CRYPT.B64", "PBKDF2.HEX", "BLF-CRYPT.HEX",
    "ARGON2ID.B64", "ssha512.hex",
)  # fmt: skip

B64 = "[A-Za-z0-9+/]"
CRYPT64 = "[A-Za-z0-9./]"
# Dovecot 2.3's output layout and default costs; each is checked against doveadm's own output.
LAYOUTS = {
    "ARGON2ID": rf"\{{ARGON2ID\}}\$argon2id\$v=19\$m=65536,t=3,p=1\${B64}{{22}}\${B64}{{43}}",
    "BLF-CRYPT": rf"\{{BLF-CRYPT\}}\$2y\$05\${CRYPT64}{{53}}",
    "PBKDF2": rf"\{{PBKDF2\}}\$1\${CRYPT64}{{16}}\$5000\$[0-9a-f]{{40}}",
    "SHA256-CRYPT": rf"\{{SHA256-CRYPT\}}\$5\${CRYPT64}{{16}}\${CRYPT64}{{43}}",
    "SHA512-CRYPT": rf"\{{SHA512-CRYPT\}}\$6\${CRYPT64}{{16}}\${CRYPT64}{{86}}",
    "SSHA256": rf"\{{SSHA256\}}{B64}{{48}}",  # 32-octet digest + 4-octet salt
    "SSHA512": rf"\{{SSHA512\}}{B64}{{91}}=",  # 64-octet digest + 4-octet salt
    "SSHA256.HEX": r"\{SSHA256.HEX\}[0-9a-f]{72}",
}


@pytest.mark.parametrize("scheme", SCHEMES + ENCODED)
def test_doveadm_verifies_our_hashes(backend: ModuleType, scheme: str) -> None:
    stored = backend.hash_password(PASSWORD.encode(), scheme)
    assert stored.startswith("{" + scheme.upper() + "}")
    assert doveadm_verifies(stored, PASSWORD)
    assert not doveadm_verifies(stored, PASSWORD + "x")


@pytest.mark.parametrize("scheme", sorted(LAYOUTS))
def test_layout_and_default_costs_match_doveadm(backend: ModuleType, scheme: str) -> None:
    ours = backend.hash_password(b"secret", scheme)
    theirs = doveadm_pw("-s", scheme, "-p", "secret").stdout.strip()
    assert re.fullmatch(LAYOUTS[scheme], theirs), theirs
    assert re.fullmatch(LAYOUTS[scheme], ours), ours


@pytest.mark.parametrize("scheme", ["PLAIN", "CLEAR", "CRAM-MD5", "PLAIN.B64", "CRAM-MD5.B64"])
def test_deterministic_schemes_equal_doveadm_output(backend: ModuleType, scheme: str) -> None:
    theirs = doveadm_pw("-s", scheme, "-p", PASSWORD).stdout.strip()
    assert backend.hash_password(PASSWORD.encode(), scheme) == theirs


def test_we_verify_every_doveadm_made_hash(backend: ModuleType) -> None:
    entries = load_fixture("dovecot_hashes.json")["entries"]
    labels = {entry["stored"].split("}")[0] for entry in entries}
    assert {"{" + scheme for scheme in SCHEMES} <= labels
    for entry in entries:
        password = entry["password"].encode()
        assert backend.verify_password(entry["stored"], password), entry["command"]
        assert not backend.verify_password(entry["stored"], b"#" + password[1:]), entry["command"]
        assert not backend.verify_password(entry["stored"], b"wrong" + password), entry["command"]


def test_bcrypt_uses_the_first_72_octets_like_dovecot(backend: ModuleType) -> None:
    long_password = "x" * 80
    stored = backend.hash_password(long_password.encode(), "BLF-CRYPT")
    assert backend.verify_password(stored, b"x" * 72)
    assert doveadm_verifies(stored, "x" * 72)
    assert not backend.verify_password(stored, b"x" * 71)
