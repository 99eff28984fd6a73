"""Core primitives, Rust and Python backends side by side, with plain-stdlib baselines.

Two ways to run it:

    python benches/bench_core.py --rounds 7      # Rust against the stdlib, interleaved

prints, for each primitive, the Rust row against the obvious stdlib code (which validates
less), measured in interleaved rounds (every row once per round, so a busy neighbour slows
all rows alike) with the min and median speed ratio over the rounds: docs/benchmarks.md.

    python -m pytest benches/bench_core.py --benchmark-enable --benchmark-json=bench-core.json
    python benches/summarize.py bench-core.json

makes each primitive one pytest-benchmark group holding the ``rust`` and ``python`` rows and,
where the standard library has an equivalent, a ``stdlib`` row; summarize.py turns the JSON into
the Rust/Python ratio table of docs/library.md.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import importlib
import statistics
import timeit
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
# Two equal digests as servers hold them: text (equal, not the same object).
EQ_TEXT_LEFT = DIGEST
EQ_TEXT_RIGHT = "".join(DIGEST)
# An MD5 input of exactly two blocks after padding (64 + 55 octets).
TWO_MD5_BLOCKS = bytes(119)


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

    def decode_plain() -> Any:
        return b.decode_plain(PLAIN_LINE)

    return {
        "decode_response": lambda: b.decode_response(PLAIN_LINE),
        "encode_challenge": lambda: b.encode_challenge(CHALLENGE),
        "parse_plain": lambda: b.parse_plain(PLAIN_MESSAGE),
        "decode_response+parse_plain": decode_and_parse_plain,
        "decode_plain": decode_plain,
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
        "constant_time_eq(str)": lambda: b.constant_time_eq(EQ_TEXT_LEFT, EQ_TEXT_RIGHT),
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
    "decode_response+parse_plain": lambda: base64.b64decode(PLAIN_LINE).split(b"\x00"),
    "decode_plain": lambda: base64.b64decode(PLAIN_LINE).split(b"\x00"),
    "cram_md5_digest": lambda: hmac.new(SECRET, CHALLENGE, "md5").hexdigest(),
    "cram_md5_verify": _stdlib_cram_verify,
    "apop_digest": lambda: hashlib.md5(CHALLENGE + SECRET).hexdigest(),
    "apop_verify": _stdlib_apop_verify,
    "constant_time_eq": lambda: hmac.compare_digest(EQ_LEFT, EQ_RIGHT),
    "constant_time_eq(str)": lambda: hmac.compare_digest(EQ_TEXT_LEFT, EQ_TEXT_RIGHT),
    # Not the same work: the reference the prepared verify is held to (see _md5_reference).
    "cram_md5_verify_prepared": lambda: hashlib.md5(TWO_MD5_BLOCKS).digest(),
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
    # The stdlib row of the prepared verify is its MD5 reference, not a verification.
    reference = implementation == "stdlib" and primitive == "cram_md5_verify_prepared"
    if primitive.endswith(("verify", "verify_prepared")) and not reference:
        assert result is True
    if primitive in ("decode_response+parse_plain", "decode_plain") and implementation != "stdlib":
        assert result == ("", USER, SECRET)


# ---------------------------------------------------------------- interleaved script mode

# The primitives held to "Rust at or above the stdlib"; the prepared verify is held to
# "within 2x of two MD5 blocks plus the call" instead.
AGAINST_STDLIB = [
    "decode_response+parse_plain",
    "decode_plain",
    "decode_response",
    "encode_challenge",
    "parse_plain",
    "cram_md5_digest",
    "cram_md5_verify",
    "apop_digest",
    "apop_verify",
    "constant_time_eq",
    "constant_time_eq(str)",
]
_MIB_OF_BLOCKS = bytes(1 << 20)


def _calls_for(timer: timeit.Timer, target: float) -> int:
    number, seconds = timer.autorange()
    return max(1, int(number * target / seconds))


def _seconds_per_call(function: Callable[[], Any], target: float) -> float:
    """The best of five runs of about ``target`` seconds each."""
    timer = timeit.Timer(function)
    number = _calls_for(timer, target)
    return min(timer.repeat(repeat=5, number=number)) / number


def _paired_seconds_per_call(
    first: Callable[[], Any], second: Callable[[], Any], target: float
) -> tuple[float, float]:
    """Both functions' best of five runs, the runs alternating: a burst of load on the shared
    machine falls on both rows, not on one of them."""
    timers = (timeit.Timer(first), timeit.Timer(second))
    numbers = [_calls_for(timer, target) for timer in timers]
    best = [float("inf"), float("inf")]
    for _ in range(5):
        for index, timer in enumerate(timers):
            best[index] = min(best[index], timer.timeit(numbers[index]) / numbers[index])
    return best[0], best[1]


def _md5_reference(target: float) -> float:
    """Two MD5 blocks (OpenSSL's per-block time over 1 MiB) plus a C call taking two bytes."""
    per_block = _seconds_per_call(lambda: hashlib.md5(_MIB_OF_BLOCKS).digest(), target) / (
        len(_MIB_OF_BLOCKS) / 64
    )
    call = _seconds_per_call(lambda: hmac.compare_digest(b"", b""), target)
    return 2 * per_block + call


def run_interleaved(rounds: int, target: float) -> list[str]:
    """Every row once per round; the table (Markdown) of times and speed ratios."""
    rust = _primitives(importlib.import_module("seikyou_auth._core"))
    ratios: dict[str, list[float]] = {name: [] for name in [*AGAINST_STDLIB, "prepared"]}
    times: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name in AGAINST_STDLIB:
            rust_time, stdlib_time = _paired_seconds_per_call(rust[name], STDLIB[name], target)
            times.setdefault(f"{name} rust", []).append(rust_time)
            times.setdefault(f"{name} stdlib", []).append(stdlib_time)
            ratios[name].append(stdlib_time / rust_time)
        prepared = _seconds_per_call(rust["cram_md5_verify_prepared"], target)
        reference = _md5_reference(target)
        times.setdefault("prepared rust", []).append(prepared)
        times.setdefault("prepared stdlib", []).append(reference)
        ratios["prepared"].append(prepared / reference)
    table = [
        "| primitive | Rust | stdlib | stdlib/Rust min | median |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in AGAINST_STDLIB:
        table.append(
            f"| `{name}` | {min(times[name + ' rust']) * 1e9:.0f} ns"
            f" | {min(times[name + ' stdlib']) * 1e9:.0f} ns"
            f" | {min(ratios[name]):.2f}x | {statistics.median(ratios[name]):.2f}x |"
        )
    table += [
        "",
        "| prepared CRAM-MD5 verify | Rust | 2 MD5 blocks + call | Rust/reference max | median |",
        "|---|---:|---:|---:|---:|",
        f"| `cram_md5_verify_prepared` | {min(times['prepared rust']) * 1e9:.0f} ns"
        f" | {min(times['prepared stdlib']) * 1e9:.0f} ns"
        f" | {max(ratios['prepared']):.2f}x | {statistics.median(ratios['prepared']):.2f}x |",
    ]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument(
        "--seconds", type=float, default=0.05, help="about this long per timing (default 0.05)"
    )
    arguments = parser.parse_args()
    if arguments.rounds < 1 or arguments.seconds <= 0:
        parser.error("--rounds must be at least 1 and --seconds positive")
    print("\n".join(run_interleaved(arguments.rounds, arguments.seconds)))


if __name__ == "__main__":
    main()
