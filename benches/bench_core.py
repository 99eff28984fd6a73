"""Core primitives, Rust and Python backends side by side, with plain-stdlib baselines.

Run (about a minute):

    python -m pytest benches/bench_core.py --benchmark-enable --benchmark-json=bench-core.json
    python benches/summarize.py bench-core.json

Each primitive is one pytest-benchmark group holding the ``rust`` and ``python`` rows and, where
the standard library has an equivalent, a ``stdlib`` row. summarize.py turns the JSON into the
Rust/Python ratio table of docs/core.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

HOSTNAME = "ma1.seikyou.ne.jp"
USER = "ma10001a@seikyou.ne.jp"
SECRET = b"Tr0ub4dor&3"
CHALLENGE = b"<83741965027318465091.1795800000@ma1.seikyou.ne.jp>"
PLAIN_MESSAGE = b"\x00" + USER.encode() + b"\x00" + SECRET
PLAIN_LINE = base64.b64encode(PLAIN_MESSAGE)
DIGEST = hmac.new(SECRET, CHALLENGE, "md5").hexdigest()
CRAM_MESSAGE = USER.encode() + b" " + DIGEST.encode()
APOP_DIGEST = hashlib.md5(CHALLENGE + SECRET).hexdigest()
EQ_LEFT = bytes(range(32))
EQ_RIGHT = bytes(range(32))


def _backend(name: str) -> ModuleType:
    module = "seikyou_auth._core" if name == "rust" else "seikyou_auth._pure"
    try:
        return importlib.import_module(module)
    except ImportError:
        pytest.skip(f"{module} is not built")


def _primitives(b: ModuleType) -> dict[str, Callable[[], Any]]:
    state = b.cram_md5_prepare(SECRET)

    def decode_and_parse_plain() -> Any:
        return b.parse_plain(b.decode_response(PLAIN_LINE))

    return {
        "decode_response": lambda: b.decode_response(PLAIN_LINE),
        "encode_challenge": lambda: b.encode_challenge(CHALLENGE),
        "parse_plain": lambda: b.parse_plain(PLAIN_MESSAGE),
        "decode_response+parse_plain": decode_and_parse_plain,
        "parse_login_username": lambda: b.parse_login_username(USER.encode()),
        "parse_login_password": lambda: b.parse_login_password(SECRET),
        "parse_cram_md5_response": lambda: b.parse_cram_md5_response(CRAM_MESSAGE),
        "cram_md5_challenge": lambda: b.cram_md5_challenge(HOSTNAME),
        "apop_timestamp": lambda: b.apop_timestamp(HOSTNAME),
        "cram_md5_digest": lambda: b.cram_md5_digest(SECRET, CHALLENGE),
        "cram_md5_response": lambda: b.cram_md5_response(USER, SECRET, CHALLENGE),
        "cram_md5_prepare": lambda: b.cram_md5_prepare(SECRET),
        "cram_md5_verify": lambda: b.cram_md5_verify(SECRET, CHALLENGE, DIGEST),
        "cram_md5_verify_prepared": lambda: b.cram_md5_verify_prepared(state, CHALLENGE, DIGEST),
        "apop_digest": lambda: b.apop_digest(CHALLENGE, SECRET),
        "apop_verify": lambda: b.apop_verify(CHALLENGE, SECRET, APOP_DIGEST),
        "constant_time_eq": lambda: b.constant_time_eq(EQ_LEFT, EQ_RIGHT),
    }


def _stdlib_cram_verify() -> bool:
    return hmac.compare_digest(hmac.new(SECRET, CHALLENGE, "md5").hexdigest(), DIGEST)


def _stdlib_apop_verify() -> bool:
    return hmac.compare_digest(hashlib.md5(CHALLENGE + SECRET).hexdigest(), APOP_DIGEST)


# The nearest plain-stdlib spelling of a primitive, without the spec's checks.
STDLIB: dict[str, Callable[[], Any]] = {
    "decode_response": lambda: base64.b64decode(PLAIN_LINE, validate=True),
    "encode_challenge": lambda: binascii.b2a_base64(CHALLENGE, newline=False),
    "parse_plain": lambda: PLAIN_MESSAGE.split(b"\x00"),
    "decode_response+parse_plain": lambda: base64.b64decode(PLAIN_LINE, validate=True).split(
        b"\x00"
    ),
    "cram_md5_digest": lambda: hmac.new(SECRET, CHALLENGE, "md5").hexdigest(),
    "cram_md5_verify": _stdlib_cram_verify,
    "apop_digest": lambda: hashlib.md5(CHALLENGE + SECRET).hexdigest(),
    "apop_verify": _stdlib_apop_verify,
    "constant_time_eq": lambda: hmac.compare_digest(EQ_LEFT, EQ_RIGHT),
}

PRIMITIVES = list(_primitives(importlib.import_module("seikyou_auth._pure")))
CASES = [
    pytest.param(primitive, implementation, id=f"{primitive}-{implementation}")
    for primitive in PRIMITIVES
    for implementation in ("rust", "python", "stdlib")
    if implementation != "stdlib" or primitive in STDLIB
]


@pytest.mark.parametrize(("primitive", "implementation"), CASES)
def test_core(benchmark: Any, primitive: str, implementation: str) -> None:
    if implementation == "stdlib":
        function = STDLIB[primitive]
    else:
        function = _primitives(_backend(implementation))[primitive]
    benchmark.group = primitive
    benchmark.extra_info.update(primitive=primitive, implementation=implementation)
    result = benchmark(function)
    if primitive.endswith("verify") or primitive.endswith("verify_prepared"):
        assert result is True
    if primitive == "decode_response+parse_plain" and implementation != "stdlib":
        assert result == ("", USER, SECRET)
