"""Connection and login policy shared by SMTP and POP3.

Trusted networks, when a cleartext mechanism may be used, the per-address delay
after failed logins, the bad-command budget and the one log line per login attempt.
Connection caps are the connection layer's (``server/connection.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
import time
from collections.abc import Iterable

from seikyou_auth.logtext import quoted
from seikyou_auth.server import metrics
from seikyou_auth.server.shared.penalties import SharedFailureCounts

__all__ = [
    "DEFAULT_FORGET_AFTER",
    "BadCommandBudget",
    "FailureDelay",
    "Policy",
    "log_login_attempt",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

login_log = logging.getLogger("seikyou_auth.login")

# An hour without a failure from an address starts its count over (Dovecot keeps no count at all).
DEFAULT_FORGET_AFTER = 3600.0


def _address(addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        parsed = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


class Policy:
    """Which clients are inside the ISP's own networks, and what that allows."""

    def __init__(self, trusted_networks: Iterable[Network]) -> None:
        self.trusted_networks = tuple(trusted_networks)
        # Parsing an address costs more than the rest of a login; clients come back often.
        self._trusted_cache: dict[str, bool] = {}

    def is_trusted(self, addr: str) -> bool:
        cached = self._trusted_cache.get(addr)
        if cached is not None:
            return cached
        parsed = _address(addr)
        trusted = parsed is not None and any(
            parsed.version == network.version and parsed in network
            for network in self.trusted_networks
        )
        if len(self._trusted_cache) >= 65536:
            self._trusted_cache.clear()
        self._trusted_cache[addr] = trusted
        return trusted

    def cleartext_allowed(self, setting: str, addr: str, tls_active: bool) -> bool:
        """Whether a cleartext mechanism (PLAIN, LOGIN, USER/PASS) may run on this connection."""
        if setting == "always":
            return True
        if setting == "never":
            return tls_active
        return tls_active or self.is_trusted(addr)


class FailureDelay:
    """Delays the answer to a failed login, growing per client address.

    Consecutive failures from one address wait ``delays[0]``, ``delays[1]``, ...,
    then ``delays[-1]`` for every further failure (Dovecot: 2, 4, 8, 15 s). A
    success from the address, or ``forget_after`` seconds without a failure,
    starts it over. Trusted networks are never delayed.

    With ``shared`` (Redis) the counts are the same on every node: a failure on one
    node grows the delay on all of them. When Redis cannot answer, this node's own
    counts decide, as on a single node. With ``per_account`` the failures for one
    account name are counted too, from any address, and a failure waits the longer
    of the two delays: guessing spread over many addresses still slows down. A
    success does not clear an account's count (the guesser's addresses never
    succeed; ``forget_after`` does).
    """

    def __init__(
        self,
        delays: Iterable[float],
        policy: Policy,
        forget_after: float = DEFAULT_FORGET_AFTER,
        *,
        shared: SharedFailureCounts | None = None,
        per_account: bool = False,
    ) -> None:
        self.delays = tuple(delays) or (0.0,)
        self.policy = policy
        self.forget_after = forget_after
        self.shared = shared
        self.per_account = per_account
        self._failures: dict[str, tuple[int, float]] = {}
        self._forgetting: set[asyncio.Task[None]] = set()

    def _delay_for(self, earlier_failures: int) -> float:
        return self.delays[min(earlier_failures, len(self.delays) - 1)]

    def _local_count(self, key: str, now: float) -> int:
        count, last = self._failures.get(key, (0, 0.0))
        return 0 if now - last > self.forget_after else count

    def next_delay(self, addr: str) -> float:
        """The delay ``addr``'s next failure earns, as far as this node knows."""
        if self.policy.is_trusted(addr):
            return 0.0
        return self._delay_for(self._local_count(_address_key(addr), time.monotonic()))

    async def failed(self, addr: str, account: str | None = None) -> None:
        """Record a failure (of ``account``, when the client named one) and sleep its penalty."""
        if self.policy.is_trusted(addr):
            return
        earlier = await self._count_failure(_address_key(addr))
        if self.per_account and account:
            earlier = max(earlier, await self._count_failure(_account_key(account)))
        delay = self._delay_for(earlier)
        if delay > 0:
            metrics.penalty_applied(delay)
            await asyncio.sleep(delay)

    async def _count_failure(self, key: str) -> int:
        """Count one failure for ``key``; how many came before it."""
        now = time.monotonic()
        count = self._local_count(key, now) + 1
        if self.shared is not None:
            shared_count = await self.shared.add(key)
            if shared_count is not None:
                count = shared_count
        self._failures[key] = (count, now)
        self._expire(now)
        return count - 1

    def is_penalised(self, addr: str) -> bool:
        """Whether ``addr``'s next failure will be delayed for failures it already had.

        The login layer spends no decoy hashing on such an address (``Authenticator``).
        Synchronous, so it answers from this node's view: an address seen failing on
        another node only counts here after its first failure here.
        """
        if self.policy.is_trusted(addr):
            return False
        return self._local_count(_address_key(addr), time.monotonic()) > 0

    async def hold(self, addr: str) -> None:
        """Sleep the address's next penalty (at least the first step) before a temporary failure
        (a full login queue, the store down), without counting a failure: a client that retries
        at once would turn the cheap answer into a busy loop. Trusted networks never wait."""
        if self.policy.is_trusted(addr):
            return
        key = _address_key(addr)
        earlier = self._local_count(key, time.monotonic())
        if self.shared is not None:
            shared_count = await self.shared.get(key)
            if shared_count is not None:
                earlier = shared_count
        delay = self._delay_for(earlier)
        if delay > 0:
            metrics.penalty_applied(delay)
            await asyncio.sleep(delay)

    def reset(self, addr: str) -> None:
        """A success from ``addr``: its count starts over, on every node."""
        key = _address_key(addr)
        self._failures.pop(key, None)
        if self.shared is not None:
            # Synchronous for its callers; the shared count is cleared in the background.
            task = asyncio.get_running_loop().create_task(self.shared.forget(key))
            self._forgetting.add(task)
            task.add_done_callback(self._forgetting.discard)

    def _expire(self, now: float) -> None:
        if len(self._failures) < 4096:
            return
        stale = [a for a, (_, last) in self._failures.items() if now - last > self.forget_after]
        for addr in stale:
            del self._failures[addr]


def _address_key(addr: str) -> str:
    return "addr:" + addr


def _account_key(account: str) -> str:
    # "name" and "name@domain" are one account to the store, so they count as one here.
    # A digest: the name is client text of any length, and Redis needs no readable copy of it.
    name = account.strip().lower()
    name = name.rpartition("@")[0] or name
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape"))
    return "account:" + digest.hexdigest()


class BadCommandBudget:
    """Counts unknown or malformed commands; a session ends once the budget is spent."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def spend(self) -> bool:
        """Record one bad command; True when the client has now used up its budget."""
        self.count += 1
        return self.count >= self.limit


_TOKEN = re.compile(r"[A-Za-z0-9._:%-]+")


def _word(text: str) -> str:
    # The server's own values are single tokens; anything else is shown as client text.
    return text if _TOKEN.fullmatch(text) else quoted(text)


def log_login_attempt(
    protocol: str,
    username: str | None,
    mechanism: str,
    addr: str,
    tls: bool,
    result: str,
    *,
    elapsed_ms: int | None = None,
    service: str | None = None,
    scheme_mismatch: str | None = None,
) -> None:
    """The one log line per login attempt (logfmt). Never pass a secret: only names and outcomes.

    The server's own fields come first, the client-supplied ones last and always quoted, so
    a user name such as ``x client=203.0.113.9 result=ok`` stays inside ``user="..."``:
    ``smtp login result=failed mechanism=PLAIN client=127.0.0.5 tls=yes ms=3 user="x"``.
    ``result`` is one of ``ok failed malformed cancelled unavailable cleartext-refused
    too-long in-use mailbox-error``.
    """
    metrics.login_attempted(protocol, mechanism, result)
    if not login_log.isEnabledFor(logging.INFO):
        return
    fields = [
        f"{_word(protocol)} login result={_word(result)}",
        f"mechanism={_word(mechanism)} client={_word(addr)} tls={'yes' if tls else 'no'}",
    ]
    if elapsed_ms is not None:
        fields.append(f"ms={elapsed_ms}")
    if service is not None:
        fields.append(f"service={quoted(service)}")
    if scheme_mismatch is not None:  # for the operator only (server/scheme_mismatch.py)
        fields.append(f"reason=stored-scheme-cannot-answer scheme={_word(scheme_mismatch)}")
    fields.append("user=-" if username is None else f"user={quoted(username)}")
    login_log.info("%s", " ".join(fields))
