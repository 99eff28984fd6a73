"""Dudect-style timing check of the constant-time primitives of both backends.

For each function, two classes of inputs that differ from the right value only in where they
differ: at the first byte (or hex digit) versus at the last; for the base64 decoder, dudect's
fixed line (one character repeated) versus a random one. The classes are interleaved at
random, every call is timed, and Welch's t-test compares the two timing distributions (as in
dudect: raw and with the slowest 1 % and 10 % cropped, the largest |t| counts). |t| > 4.5 means
the time depends on where the inputs differ.

On a shared machine a burst of load can push one measurement over, so each function is
measured in independent rounds and the median |t| of the rounds decides. Each class draws its
arguments from a pool of separately allocated copies, so that where an object happens to sit in
memory (cache-line splits, 4K aliasing: seen to give |t| = 15 between two equal byte strings)
is not mistaken for a leak. The resolution column is the smallest mean time difference a round
would flag (4.5 standard errors, slowest 10 % cropped). A deliberately leaky early-exit
comparison is the control the check must flag.

    python benches/constant_time.py [--samples N] [--rounds R] [--seed S]

Exits 1 when the control is not flagged or a real primitive is. Not part of the test run.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import hmac
import importlib
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

THRESHOLD = 4.5
CROPS = (1.0, 0.99, 0.90)
POOL = 64


@dataclass(frozen=True)
class Target:
    name: str
    backend: str
    function: Callable[..., Any]
    differs_first: tuple[Any, ...]
    differs_last: tuple[Any, ...]
    is_control: bool = False


def _flip_hex(digest: str, index: int) -> str:
    replacement = "0" if digest[index] != "0" else "1"
    return digest[:index] + replacement + digest[index + 1 :]


def _flip_byte(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def leaky_eq(a: str, b: str) -> bool:
    """The control: compares like a naive ``==`` loop, returning at the first difference."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x != y:
            return False
    return True


def targets(backends: dict[str, ModuleType], rng: random.Random) -> list[Target]:
    secret = rng.randbytes(16)
    challenge = b"<%020d.1795800000@ma1.seikyou.ne.jp>" % rng.randrange(10**20)
    cram = hmac.new(secret, challenge, "md5").hexdigest()
    apop = hashlib.md5(challenge + secret).hexdigest()
    key = rng.randbytes(32)
    # dudect's fixed-versus-random classes for the decoder: every character the same, or drawn
    # at random, at the length of a typical PLAIN response.
    fixed_line = b"A" * 48
    random_line = base64.b64encode(rng.randbytes(36))
    found = [
        Target(
            "leaky early-exit == (control)",
            "python",
            leaky_eq,
            (cram, _flip_hex(cram, 0)),
            (cram, _flip_hex(cram, 31)),
            is_control=True,
        )
    ]
    for name, backend in backends.items():
        state = backend.cram_md5_prepare(secret)
        found += [
            Target(
                "constant_time_eq",
                name,
                backend.constant_time_eq,
                (key, _flip_byte(key, 0)),
                (key, _flip_byte(key, 31)),
            ),
            Target(
                "constant_time_eq(str)",
                name,
                backend.constant_time_eq,
                (cram, _flip_hex(cram, 0)),
                (cram, _flip_hex(cram, 31)),
            ),
            Target(
                "decode_response",
                name,
                backend.decode_response,
                (fixed_line,),
                (random_line,),
            ),
            Target(
                "cram_md5_verify",
                name,
                backend.cram_md5_verify,
                (secret, challenge, _flip_hex(cram, 0)),
                (secret, challenge, _flip_hex(cram, 31)),
            ),
            Target(
                "cram_md5_verify_prepared",
                name,
                backend.cram_md5_verify_prepared,
                (state, challenge, _flip_hex(cram, 0)),
                (state, challenge, _flip_hex(cram, 31)),
            ),
            Target(
                "apop_verify",
                name,
                backend.apop_verify,
                (challenge, secret, _flip_hex(apop, 0)),
                (challenge, secret, _flip_hex(apop, 31)),
            ),
        ]
    return found


def _copy(value: Any) -> Any:
    """An equal object at a new address."""
    if isinstance(value, bytes):
        return bytes(bytearray(value))
    if isinstance(value, str):
        return "".join(list(value))
    return value


def measure(target: Target, samples: int, rng: random.Random) -> tuple[list[int], list[int]]:
    """Per-call times (ns) of the two classes, calls interleaved in random order."""
    pools = tuple(
        [tuple(_copy(value) for value in arguments) for _ in range(POOL)]
        for arguments in (target.differs_first, target.differs_last)
    )
    draws = [(cls, rng.randrange(POOL)) for cls in (rng.getrandbits(1) for _ in range(samples))]
    function = target.function
    timings: tuple[list[int], list[int]] = ([], [])
    clock = time.perf_counter_ns
    for arguments in pools[0] + pools[1]:  # warm caches and specialisation
        function(*arguments)
    gc.disable()
    try:
        for cls, index in draws:
            arguments = pools[cls][index]
            start = clock()
            function(*arguments)
            timings[cls].append(clock() - start)
    finally:
        gc.enable()
    return timings


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Welch's t of the two samples, and the standard error of their mean difference."""
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    var_a = sum((x - mean_a) ** 2 for x in a) / (len(a) - 1)
    var_b = sum((x - mean_b) ** 2 for x in b) / (len(b) - 1)
    spread = math.sqrt(var_a / len(a) + var_b / len(b))
    return ((mean_a - mean_b) / spread if spread else 0.0), spread


def analyse(first: list[int], last: list[int]) -> tuple[float, float]:
    """The largest |t| over the crops, and the smallest mean difference (ns) the most
    cropped test would flag: the check's resolution in this round."""
    pooled = sorted(first + last)
    worst, resolution = 0.0, math.inf
    for crop in CROPS:
        limit = pooled[min(len(pooled) - 1, int(crop * len(pooled)))]
        a = [x for x in first if x <= limit]
        b = [x for x in last if x <= limit]
        if len(a) > 1 and len(b) > 1:
            t, spread = welch(a, b)
            worst, resolution = max(worst, abs(t)), THRESHOLD * spread
    return worst, resolution


def _load_backends() -> dict[str, ModuleType]:
    backends = {}
    for name, module in (("rust", "seikyou_auth._core"), ("python", "seikyou_auth._pure")):
        try:
            backends[name] = importlib.import_module(module)
        except ImportError:
            print(f"{module} is not importable; its rows are skipped")
    return backends


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20_000, help="timed calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="independent rounds per function")
    parser.add_argument("--seed", type=int, default=None, help="seed of the class order")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    print(
        f"| function | backend | calls per round | \\|t\\| per round | median \\|t\\| "
        f"| resolution | verdict (threshold {THRESHOLD}) |"
    )
    print("|---|---|---:|---|---:|---:|---|")
    failures = 0
    for target in targets(_load_backends(), rng):
        results = [analyse(*measure(target, args.samples, rng)) for _ in range(args.rounds)]
        rounds = [t for t, _ in results]
        t = statistics.median(rounds)
        resolution = statistics.median(r for _, r in results)
        leaks = t > THRESHOLD
        if target.is_control:
            verdict = "flagged (as it must be)" if leaks else "NOT FLAGGED: the check is blind"
            failures += not leaks
        else:
            verdict = "LEAK" if leaks else "no leak detected"
            failures += leaks
        per_round = ", ".join(f"{value:.2f}" for value in rounds)
        print(
            f"| `{target.name}` | {target.backend} | {args.samples} | {per_round} | {t:.2f} "
            f"| {resolution:.1f} ns | {verdict} |"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
