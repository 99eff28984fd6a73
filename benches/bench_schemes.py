"""Password schemes, Rust and Python backends side by side: hash_password and verify_password.

Run (one to two minutes; ARGON2ID dominates):

    python -m pytest -p no:asyncio benches/bench_schemes.py --benchmark-enable \\
        --benchmark-json=bench-schemes.json
    python benches/summarize.py bench-schemes.json

Each scheme and operation is one pytest-benchmark group with a ``rust`` and a ``python`` row;
summarize.py prints the Rust/Python ratio table of docs/accounts.md. Costs are Dovecot's
defaults (SHA-crypt 5000 rounds, PBKDF2 5000, bcrypt cost 5, Argon2id m=64 MiB t=3 p=1), so the
times are what one login costs. The Python backend's BLF-CRYPT and ARGON2ID are the bcrypt and
argon2-cffi C/Rust extensions, so only the other schemes compare pure Python with Rust.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest

PASSWORD = "Tr0ub4dor&3 パスワード".encode()
SCHEMES = (
    "PLAIN", "CRAM-MD5", "SSHA256", "SSHA512", "PBKDF2", "SHA256-CRYPT", "SHA512-CRYPT",
    "BLF-CRYPT", "ARGON2ID", "SSHA512.HEX", "CRAM-MD5.B64",
)  # fmt: skip
# Dovecot-made values: verification cost does not depend on who hashed, and these are fixed.
SLOW = {"ARGON2ID", "BLF-CRYPT", "SHA512-CRYPT", "SHA256-CRYPT", "PBKDF2"}


def _backend(name: str) -> ModuleType:
    module = "seikyou_auth._core" if name == "rust" else "seikyou_auth._pure"
    try:
        return importlib.import_module(module)
    except ImportError:
        pytest.skip(f"{module} is not built")


def _run(benchmark: Any, scheme: str, function: Any, *args: Any) -> Any:
    if scheme in SLOW:
        rounds = 5 if scheme == "ARGON2ID" else 20
        return benchmark.pedantic(function, args=args, rounds=rounds, iterations=1)
    return benchmark(function, *args)


@pytest.mark.parametrize("implementation", ["rust", "python"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_verify_password(benchmark: Any, scheme: str, implementation: str) -> None:
    backend = _backend(implementation)
    stored = importlib.import_module("seikyou_auth._pure").hash_password(PASSWORD, scheme)
    primitive = f"verify_password {scheme}"
    benchmark.group = primitive
    benchmark.extra_info.update(primitive=primitive, implementation=implementation)
    assert _run(benchmark, scheme, backend.verify_password, stored, PASSWORD) is True


@pytest.mark.parametrize("implementation", ["rust", "python"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_hash_password(benchmark: Any, scheme: str, implementation: str) -> None:
    backend = _backend(implementation)
    primitive = f"hash_password {scheme}"
    benchmark.group = primitive
    benchmark.extra_info.update(primitive=primitive, implementation=implementation)
    stored = _run(benchmark, scheme, backend.hash_password, PASSWORD, scheme)
    assert backend.verify_password(stored, PASSWORD)
