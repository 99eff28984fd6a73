"""Password-scheme helpers for servers: which mechanism can use a stored value, and async verify.

Dovecot's rule decides what a login mechanism can do with a stored password: PLAIN, LOGIN and
USER/PASS send the password itself, so any scheme verifies them; CRAM-MD5 needs the HMAC-MD5
state (a ``{CRAM-MD5}`` value, or the plaintext to derive it from); APOP needs the plaintext.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import seikyou_auth
from seikyou_auth._pure._schemes import (
    PLAINTEXT_SCHEMES,
    SLOW_SCHEMES,
    SchemeName,
    decode_stored,
    parse_scheme,
    split_stored,
)
from seikyou_auth.errors import UnsupportedScheme

__all__ = [
    "cost_rank",
    "cram_md5_state",
    "is_slow",
    "mechanism_allowed",
    "plaintext_secret",
    "scheme_of",
    "verify_password_async",
]

_ANY_SCHEME_MECHANISMS = frozenset({"PLAIN", "LOGIN", "USER"})
_CRAM_MD5_SCHEMES = PLAINTEXT_SCHEMES | {"CRAM-MD5"}


def scheme_of(stored: str) -> str:
    """The stored value's scheme, upper case, without an encoding suffix; no prefix -> CRYPT.

    A name this package does not know is returned as written (upper-cased), so callers can
    report it; verifying such a value raises ``UnsupportedScheme``.
    """
    scheme_text, _ = split_stored(stored)
    scheme = _parsed_scheme(scheme_text)
    return scheme_text.upper() if scheme is None else scheme.name


# Every login parses its account's scheme name more than once; a store holds a handful of
# distinct names, and none of them is a secret.
@functools.lru_cache(maxsize=256)
def _parsed_scheme(scheme_text: str) -> SchemeName | None:
    try:
        return parse_scheme(scheme_text)
    except UnsupportedScheme:
        return None


def mechanism_allowed(mechanism: str, stored: str) -> bool:
    """Whether ``mechanism`` (PLAIN, LOGIN, USER, CRAM-MD5, APOP) can authenticate ``stored``."""
    mechanism = mechanism.upper()
    if mechanism in _ANY_SCHEME_MECHANISMS:
        return True
    scheme = scheme_of(stored)
    if mechanism == "CRAM-MD5":
        return scheme in _CRAM_MD5_SCHEMES
    if mechanism == "APOP":
        return scheme in PLAINTEXT_SCHEMES
    return False


def _decoded(stored: str, wanted: frozenset[str]) -> bytes | None:
    scheme_text, data = split_stored(stored)
    scheme = _parsed_scheme(scheme_text)
    if scheme is None or scheme.name not in wanted:
        return None
    return decode_stored(scheme, data)


def plaintext_secret(stored: str) -> bytes | None:
    """The password of a PLAIN/CLEAR stored value (any encoding), else None."""
    return _decoded(stored, PLAINTEXT_SCHEMES)


def cram_md5_state(stored: str) -> bytes | None:
    """The 32-byte HMAC-MD5 state for CRAM-MD5, from ``{CRAM-MD5}`` or a plaintext; else None."""
    state = _decoded(stored, frozenset({"CRAM-MD5"}))
    if state is not None:
        return state
    secret = plaintext_secret(stored)
    if secret is None:
        return None
    prepared: bytes = seikyou_auth.cram_md5_prepare(secret)
    return prepared


# Cheapest first, by the verify time of each scheme at Dovecot's default parameters
# (README, password scheme benchmarks); unprefixed CRYPT values are mostly $6$.
_COST_ORDER = (
    ("PLAIN", "CLEAR", "CRAM-MD5"),
    ("SSHA256", "SSHA512"),
    ("PBKDF2",),
    ("SHA256-CRYPT",),
    ("BLF-CRYPT",),
    ("SHA512-CRYPT", "CRYPT"),
    ("ARGON2ID",),
)
_COST_RANKS = {name: rank for rank, names in enumerate(_COST_ORDER) for name in names}


def cost_rank(stored: str) -> int:
    """How expensive verifying ``stored`` is, as a rank: higher costs more (unknown: 0)."""
    return _COST_RANKS.get(scheme_of(stored), 0)


def is_slow(stored: str) -> bool:
    """Whether verifying ``stored`` costs enough CPU to belong off the event loop."""
    return scheme_of(stored) in SLOW_SCHEMES


_HASH_THREAD_NICENESS = 5


def _lower_thread_priority() -> None:
    # A login answered a few ms later goes unnoticed; a loop that misses its turn on the CPU
    # stalls every connection. Linux applies a thread id's niceness to that thread alone.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _HASH_THREAD_NICENESS)


@functools.cache
def _slow_hash_pool() -> ThreadPoolExecutor:
    # One core is left to the event loop, and the pool bounds how much CPU and memory (ARGON2ID
    # takes 64 MiB each) a burst of logins can claim; excess verifications queue here.
    workers = max(1, (os.cpu_count() or 2) - 1)
    return ThreadPoolExecutor(
        max_workers=workers,
        thread_name_prefix="seikyou-auth-hash",
        initializer=_lower_thread_priority,
    )


# A forked server worker inherits the pool object but not its threads: start a fresh one.
os.register_at_fork(after_in_child=_slow_hash_pool.cache_clear)


async def verify_password_async(stored: str, password: bytes) -> bool:
    """``verify_password`` without blocking the loop: slow schemes run in worker threads.

    The Rust backend releases the GIL while hashing; in the Python backend bcrypt and
    argon2-cffi do, and the pure-Python SHA-crypt yields at the interpreter's switch interval.
    """
    verify = seikyou_auth.verify_password
    if isinstance(stored, str) and is_slow(stored):
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(_slow_hash_pool(), verify, stored, password)
    else:
        result = verify(stored, password)
    return bool(result)
