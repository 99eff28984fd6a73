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
import weakref
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import seikyou_auth
from seikyou_auth.errors import StoreUnavailable, UnsupportedScheme

__all__ = [
    "HASH_THREADS",
    "LoginQueueFull",
    "SchemeInfo",
    "SlowHashQueue",
    "cost_rank",
    "cram_md5_state",
    "is_slow",
    "mechanism_allowed",
    "plaintext_secret",
    "scheme_of",
    "stored_scheme",
    "verify_password_async",
    "verify_with",
]


class SchemeInfo(NamedTuple):
    """A scheme's row of the core's scheme table (``seikyou_auth.scheme_info``), with names."""

    name: str  # upper case, without the encoding suffix
    label: str  # as written in front of a new hash, with the suffix
    encoding: str  # "none", "base64" or "hex": the one in use
    raw_len: int  # the decoded value's length where the scheme fixes it, else 0
    slow: bool  # verified in a hashing thread, off the event loop
    cost: int  # verify cost rank, cheapest 0
    can_generate: bool  # False for CRYPT, which only verifies


# Every login looks its account's scheme name up more than once; a store holds a handful of
# distinct names, and none of them is a secret.
@functools.lru_cache(maxsize=256)
def _scheme_info(scheme_text: str) -> SchemeInfo | None:
    try:
        return SchemeInfo(*seikyou_auth.scheme_info(scheme_text))
    except UnsupportedScheme:
        return None


def stored_scheme(stored: str) -> SchemeInfo:
    """The scheme of a stored value; ``UnsupportedScheme`` when this package does not know it."""
    scheme_text, _ = seikyou_auth.parse_stored(stored)
    info = _scheme_info(scheme_text)
    if info is None:
        raise UnsupportedScheme(f"unsupported password scheme: {scheme_text}")
    return info


def scheme_of(stored: str) -> str:
    """The stored value's scheme, upper case, without an encoding suffix; no prefix -> CRYPT.

    A name this package does not know is returned as written (upper-cased), so callers can
    report it; verifying such a value raises ``UnsupportedScheme``.
    """
    scheme_text, _ = seikyou_auth.parse_stored(stored)
    info = _scheme_info(scheme_text)
    return scheme_text.upper() if info is None else info.name


# Dovecot's two names for the scheme whose stored value is the password itself.
_PLAINTEXT_SCHEMES = frozenset({"PLAIN", "CLEAR"})
# Mechanisms that receive the password itself verify any scheme; the others need credentials of
# one scheme, which a plaintext value can also provide (Dovecot's credentials lookup).
_PASSWORD_MECHANISMS = frozenset({"PLAIN", "LOGIN", "USER"})
_CREDENTIALS_NEEDED = {"CRAM-MD5": "CRAM-MD5", "APOP": "PLAIN"}


def mechanism_allowed(mechanism: str, stored: str) -> bool:
    """Whether ``mechanism`` (PLAIN, LOGIN, USER, CRAM-MD5, APOP) can authenticate ``stored``."""
    mechanism = mechanism.upper()
    if mechanism in _PASSWORD_MECHANISMS:
        return True
    needed = _CREDENTIALS_NEEDED.get(mechanism)
    if needed is None:
        return False
    scheme = scheme_of(stored)
    return scheme == needed or scheme in _PLAINTEXT_SCHEMES


def _decoded(stored: str, wanted: frozenset[str]) -> bytes | None:
    scheme_text, raw = seikyou_auth.parse_stored(stored)
    info = _scheme_info(scheme_text)
    return raw if info is not None and info.name in wanted else None


def plaintext_secret(stored: str) -> bytes | None:
    """The password of a PLAIN/CLEAR stored value (any encoding), else None."""
    return _decoded(stored, _PLAINTEXT_SCHEMES)


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


def cost_rank(stored: str) -> int:
    """How expensive verifying ``stored`` is, as a rank: higher costs more (unknown: 0)."""
    info = _scheme_info(seikyou_auth.parse_stored(stored)[0])
    return 0 if info is None else info.cost


def is_slow(stored: str) -> bool:
    """Whether verifying ``stored`` costs enough CPU to belong off the event loop."""
    info = _scheme_info(seikyou_auth.parse_stored(stored)[0])
    return info is not None and info.slow


# One core is left to the event loop; more threads would only queue on the CPU (and ARGON2ID
# takes 64 MiB each).
HASH_THREADS = max(1, (os.cpu_count() or 2) - 1)
# A login answered a few ms later goes unnoticed; a loop that misses its turn on the CPU
# stalls every connection. Checks for penalised addresses get what the rest leave over.
_HASH_THREAD_NICENESS = 5
_PENALISED_THREAD_NICENESS = 19


def _lower_thread_priority(niceness: int) -> None:
    # Linux applies a thread id's niceness to that thread alone.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


def _lane_threads(penalised: bool) -> int:
    return 1 if penalised else HASH_THREADS


@functools.cache
def _hash_pool(penalised: bool) -> ThreadPoolExecutor:
    """The hashing threads of one lane: ``HASH_THREADS`` for checks, one for penalised ones."""
    return ThreadPoolExecutor(
        max_workers=_lane_threads(penalised),
        thread_name_prefix="seikyou-auth-hash-penalised" if penalised else "seikyou-auth-hash",
        initializer=_lower_thread_priority,
        initargs=(_PENALISED_THREAD_NICENESS if penalised else _HASH_THREAD_NICENESS,),
    )


class LoginQueueFull(StoreUnavailable):
    """Too many slow password checks are waiting: a temporary failure, try again later."""


@dataclass(eq=False, slots=True)
class _Job:
    verify: Callable[[str, bytes], object]
    stored: str
    password: bytes
    client: str | None
    future: asyncio.Future[bool]
    penalised: bool

    def settle(self, result: bool | None, error: BaseException | None) -> None:
        # Runs on the job's loop; the waiter may have gone (client disconnected) meanwhile.
        if self.future.done():
            return
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(bool(result))


class SlowHashQueue:
    """Slow password checks waiting for a hashing thread, served round-robin by client address.

    A client address has at most one check running at a time and, once it finishes, goes to
    the back of the rotation: however many checks one address floods in, a check from another
    address waits behind at most one check of each address ahead of it.

    Checks marked ``penalised`` (from an address whose logins keep failing) have their own
    lane: one thread at the lowest CPU priority. A hash cannot be interrupted, so sharing the
    threads would make a subscriber wait for a stranger's ARGON2ID check already running; in
    their own lane they only take the CPU the other checks leave over.

    Bounds keep a flood from costing memory and time without end: ``size`` checks waiting in
    all and ``per_client`` waiting or running for one address; over either, ``LoginQueueFull``
    (a ``StoreUnavailable``, so every protocol answers its temporary failure). Checks with no
    known address (``client=None``, e.g. an embedder that does not say) share no fairness and
    no per-address bound. The event loop only enqueues and is woken with each result.
    """

    def __init__(self, size: int = 256, per_client: int = 4) -> None:
        if size < 1 or per_client < 1:
            raise ValueError("login queue bounds must be at least 1")
        self.size = size
        self.per_client = per_client
        self._reset()
        _live_queues.add(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        # Per lane (penalised or not): clients with checks waiting and none running, in
        # serving order. A client's waiting checks go to the lane of the first of them.
        self._rotations: dict[bool, OrderedDict[str | None, deque[_Job]]] = {
            False: OrderedDict(),
            True: OrderedDict(),
        }
        # Waiting checks of clients that have one running: they rejoin a rotation after it.
        self._parked: dict[str, deque[_Job]] = {}
        self._waiting = 0
        self._per_client: Counter[str] = Counter()
        self._drainers = {False: 0, True: 0}

    @property
    def waiting(self) -> int:
        """How many checks wait for a thread now."""
        return self._waiting

    async def verify(
        self, stored: str, password: bytes, client: str | None = None, *, penalised: bool = False
    ) -> bool:
        """``verify_password`` in a hashing thread, after the checks ahead of it in fair order."""
        loop = asyncio.get_running_loop()
        job = _Job(
            seikyou_auth.verify_password, stored, password, client, loop.create_future(), penalised
        )
        with self._lock:
            if client is not None and self._per_client[client] >= self.per_client:
                raise LoginQueueFull("too many password checks waiting for one address")
            if self._waiting >= self.size:
                raise LoginQueueFull("too many password checks waiting")
            if client is not None:
                self._per_client[client] += 1
            self._waiting += 1
            lane = self._enqueue(job)
            start_drainer = lane is not None and self._claim_drainer(lane)
        if start_drainer:
            assert lane is not None
            _hash_pool(lane).submit(self._drain, lane)
        try:
            return await job.future
        except asyncio.CancelledError:
            self._withdraw(job)
            raise

    def _claim_drainer(self, lane: bool) -> bool:
        """Whether the caller is to start a thread draining ``lane`` (one more is needed)."""
        if self._drainers[lane] >= _lane_threads(lane):
            return False
        self._drainers[lane] += 1
        return True

    def _enqueue(self, job: _Job) -> bool | None:
        """Queue ``job``; the lane that has new work, or None when it waits behind its client."""
        if job.client is not None and job.client in self._parked:
            self._parked[job.client].append(job)
            return None
        for lane, rotation in self._rotations.items():
            if job.client in rotation:
                rotation[job.client].append(job)
                return lane
        self._rotations[job.penalised][job.client] = deque((job,))
        return job.penalised

    def _withdraw(self, job: _Job) -> None:
        """Drop a check whose waiter is gone, unless a thread has already taken it."""
        with self._lock:
            for rotation in self._rotations.values():
                jobs = rotation.get(job.client)
                if jobs is not None and job in jobs:
                    jobs.remove(job)
                    if not jobs:
                        del rotation[job.client]
                    break
            else:
                parked = None if job.client is None else self._parked.get(job.client)
                if parked is None or job not in parked:
                    return
                parked.remove(job)
            self._waiting -= 1
            self._release(job.client)

    def _release(self, client: str | None) -> None:
        if client is not None:
            self._per_client[client] -= 1
            if self._per_client[client] <= 0:
                del self._per_client[client]

    def _next_job(self, lane: bool) -> _Job | None:
        rotation = self._rotations[lane]
        if not rotation:
            return None
        client, jobs = rotation.popitem(last=False)
        job = jobs.popleft()
        self._waiting -= 1
        if client is None:
            if jobs:  # no address, no fairness to keep: the rest may run in parallel
                rotation[None] = jobs
        else:
            self._parked[client] = jobs
        return job

    def _finished(self, client: str | None) -> bool | None:
        """Bookkeeping after a check; the lane its client's next check joins, if any."""
        self._release(client)
        if client is None:
            return None
        jobs = self._parked.pop(client)
        if not jobs:
            return None
        lane = jobs[0].penalised
        self._rotations[lane][client] = jobs
        return lane

    def _drain(self, lane: bool) -> None:
        """One hashing thread's turn in ``lane``: run checks until none waits there."""
        while True:
            with self._lock:
                job = self._next_job(lane)
                if job is None:
                    self._drainers[lane] -= 1
                    return
            result: bool | None = None
            error: BaseException | None = None
            try:
                result = bool(job.verify(job.stored, job.password))
            except Exception as raised:  # handed to the waiting coroutine, raised there
                error = raised
            finally:
                with self._lock:
                    other = self._finished(job.client)
                    moved_lanes = other is not None and other != lane
                    start_drainer = moved_lanes and self._claim_drainer(not lane)
                if start_drainer:
                    # The client's next check waits in the other lane, which may have no thread.
                    _hash_pool(not lane).submit(self._drain, not lane)
            # A loop closed meanwhile has nobody left to tell.
            with contextlib.suppress(RuntimeError):
                job.future.get_loop().call_soon_threadsafe(job.settle, result, error)


_live_queues: weakref.WeakSet[SlowHashQueue] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A forked server worker inherits the pools and queues but not their threads.
    _hash_pool.cache_clear()
    for queue in _live_queues:
        queue._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)

_default_queue = SlowHashQueue()


async def verify_password_async(stored: str, password: bytes, *, client: str | None = None) -> bool:
    """``verify_password`` without blocking the loop: slow schemes wait in a ``SlowHashQueue``.

    The Rust backend releases the GIL while hashing; in the Python backend bcrypt and
    argon2-cffi do, and the pure-Python SHA-crypt yields at the interpreter's switch interval.
    This module's queue (256 waiting, 4 per client) serves callers that have none of their
    own; ``Authenticator`` keeps one sized by the server's limits.
    """
    return await verify_with(_default_queue, stored, password, client=client)


async def verify_with(
    queue: SlowHashQueue,
    stored: str,
    password: bytes,
    *,
    client: str | None = None,
    penalised: bool = False,
) -> bool:
    """Fast schemes inline (cheaper than a thread hop); slow ones through ``queue``."""
    if isinstance(stored, str) and is_slow(stored):
        return await queue.verify(stored, password, client, penalised=penalised)
    return bool(seikyou_auth.verify_password(stored, password))
