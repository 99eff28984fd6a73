"""A hash made by one backend verifies in the other, and deterministic schemes agree exactly."""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FAST_SCHEMES = (
    "CLEAR.B64", "CRAM-MD5", "CRAM-MD5.B64", "PLAIN.HEX", "SSHA256", "SSHA256.HEX", "SSHA512",
    "SSHA512.B64", "SHA256-CRYPT", "SHA512-CRYPT.HEX", "PBKDF2",
)  # fmt: skip
DETERMINISTIC = ("PLAIN.B64", "PLAIN.HEX", "CRAM-MD5", "CRAM-MD5.B64", "CLEAR.BASE64")
SLOW_SCHEMES = ("ARGON2ID", "BLF-CRYPT", "BLF-CRYPT.HEX")

# Both backends are immutable modules, so sharing them across examples is safe.
fixture_settings = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
passwords = st.one_of(
    st.binary(max_size=100),
    st.text(max_size=40).map(str.encode),
    st.integers(0, 130).map(lambda n: b"p" * n),  # around the SHA-crypt and HMAC block sizes
)


def test_both_backends_support_the_same_schemes(
    both_backends: tuple[ModuleType, ModuleType],
) -> None:
    rust, python = both_backends
    assert rust.SCHEMES == python.SCHEMES
    assert python.SCHEMES == (
        "ARGON2ID", "BLF-CRYPT", "CLEAR", "CRAM-MD5", "PBKDF2", "PLAIN", "SHA256-CRYPT",
        "SHA512-CRYPT", "SSHA256", "SSHA512",
    )  # fmt: skip


@fixture_settings
@given(password=passwords, scheme=st.sampled_from(FAST_SCHEMES), other=st.binary(max_size=20))
def test_fast_schemes_cross_verify(
    both_backends: tuple[ModuleType, ModuleType], password: bytes, scheme: str, other: bytes
) -> None:
    for maker, checker in (both_backends, both_backends[::-1]):
        stored = maker.hash_password(password, scheme)
        assert checker.verify_password(stored, password)
        if other != password:
            assert not checker.verify_password(stored, other)


@fixture_settings
@given(password=passwords, scheme=st.sampled_from(DETERMINISTIC))
def test_deterministic_schemes_are_identical(
    both_backends: tuple[ModuleType, ModuleType], password: bytes, scheme: str
) -> None:
    rust, python = both_backends
    assert rust.hash_password(password, scheme) == python.hash_password(password, scheme)


@pytest.mark.parametrize("scheme", SLOW_SCHEMES)
def test_slow_schemes_cross_verify(
    both_backends: tuple[ModuleType, ModuleType], scheme: str
) -> None:
    password = "パスワード with spaces".encode()
    for maker, checker in (both_backends, both_backends[::-1]):
        stored = maker.hash_password(password, scheme)
        assert checker.verify_password(stored, password)
        assert not checker.verify_password(stored, password + b"x")
