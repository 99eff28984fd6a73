"""The scheme helpers servers use: which mechanism can use a stored value, and its secrets."""

from __future__ import annotations

from types import ModuleType

import pytest

import seikyou_auth
from seikyou_auth import schemes

SECRET = b"tanstaaftanstaaf"
STORED = {
    "PLAIN": "{PLAIN}tanstaaftanstaaf",
    "CLEAR.B64": "{CLEAR.B64}dGFuc3RhYWZ0YW5zdGFhZg==",
    "PLAIN.HEX": "{PLAIN.HEX}" + SECRET.hex(),
    "CRAM-MD5": seikyou_auth.hash_password(SECRET, "CRAM-MD5"),
    "CRAM-MD5.B64": seikyou_auth.hash_password(SECRET, "CRAM-MD5.B64"),
    "SHA512-CRYPT": seikyou_auth.hash_password(SECRET, "SHA512-CRYPT"),
    "CRYPT": seikyou_auth.hash_password(SECRET, "SHA256-CRYPT").split("}", 1)[1],
    "SSHA256": seikyou_auth.hash_password(SECRET, "SSHA256"),
    "PBKDF2": seikyou_auth.hash_password(SECRET, "PBKDF2"),
    "BLF-CRYPT": seikyou_auth.hash_password(SECRET, "BLF-CRYPT"),
}


@pytest.mark.parametrize(
    ("label", "scheme"),
    [("PLAIN", "PLAIN"), ("CLEAR.B64", "CLEAR"), ("PLAIN.HEX", "PLAIN"), ("CRAM-MD5", "CRAM-MD5"),
     ("CRAM-MD5.B64", "CRAM-MD5"), ("SHA512-CRYPT", "SHA512-CRYPT"), ("CRYPT", "CRYPT"),
     ("SSHA256", "SSHA256"), ("PBKDF2", "PBKDF2"), ("BLF-CRYPT", "BLF-CRYPT")],
)  # fmt: skip
def test_scheme_of(label: str, scheme: str) -> None:
    assert schemes.scheme_of(STORED[label]) == scheme


def test_scheme_of_odd_values() -> None:
    assert schemes.scheme_of("{sha512-crypt}$6$x$y") == "SHA512-CRYPT"
    assert schemes.scheme_of("{FOO}bar") == "FOO"
    assert schemes.scheme_of("$1$salt$hash") == "MD5-CRYPT"  # as Dovecot's password_get_scheme
    assert schemes.scheme_of("") == "CRYPT"


@pytest.mark.parametrize("label", sorted(STORED))
def test_mechanism_rule_follows_dovecot(label: str) -> None:
    stored = STORED[label]
    for mechanism in ("PLAIN", "LOGIN", "USER", "login"):
        assert schemes.mechanism_allowed(mechanism, stored)
    plaintext = label.split(".")[0] in ("PLAIN", "CLEAR")
    assert schemes.mechanism_allowed("CRAM-MD5", stored) is (plaintext or label.startswith("CRAM"))
    assert schemes.mechanism_allowed("APOP", stored) is plaintext
    assert not schemes.mechanism_allowed("DIGEST-MD5", stored)


@pytest.mark.parametrize("label", sorted(STORED))
def test_plaintext_secret(label: str) -> None:
    expected = SECRET if label.split(".")[0] in ("PLAIN", "CLEAR") else None
    assert schemes.plaintext_secret(STORED[label]) == expected


def test_plaintext_secret_of_broken_encoding_is_none() -> None:
    assert schemes.plaintext_secret("{PLAIN.HEX}abc") is None
    assert schemes.plaintext_secret("{FOO}abc") is None


@pytest.mark.parametrize("label", sorted(STORED))
def test_cram_md5_state_authenticates_a_real_exchange(backend: ModuleType, label: str) -> None:
    state = schemes.cram_md5_state(STORED[label])
    if not (label.startswith("CRAM") or label.split(".")[0] in ("PLAIN", "CLEAR")):
        assert state is None
        return
    assert state == backend.cram_md5_prepare(SECRET)
    challenge = backend.cram_md5_challenge("ma1.seikyou.ne.jp")
    digest = backend.cram_md5_digest(SECRET, challenge)
    assert backend.cram_md5_verify_prepared(state, challenge, digest)
    assert not backend.cram_md5_verify_prepared(state, challenge, "0" * 32)


def test_cram_md5_state_of_a_truncated_value_is_none() -> None:
    assert schemes.cram_md5_state(STORED["CRAM-MD5"][:-2]) is None


@pytest.mark.parametrize(
    ("label", "slow"),
    [("PLAIN", False), ("CRAM-MD5", False), ("SSHA256", False), ("SHA512-CRYPT", True),
     ("CRYPT", True), ("PBKDF2", True), ("BLF-CRYPT", True)],
)  # fmt: skip
def test_is_slow(label: str, slow: bool) -> None:
    assert schemes.is_slow(STORED[label]) is slow
    assert schemes.is_slow("{ARGON2ID}$argon2id$...")
