"""Connection and login policy shared by SMTP and POP3.

Trusted networks, when a cleartext mechanism may be used, the per-address delay
after failed logins, the bad-command budget and the one log line per login attempt.
Connection caps are the connection layer's (``server/connection.py``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections.abc import Iterable

__all__ = [
    "BadCommandBudget",
    "FailureDelay",
    "Policy",
    "log_login_attempt",
    "quoted",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

login_log = logging.getLogger("seikyou_auth.login")


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
    """

    def __init__(
        self, delays: Iterable[float], policy: Policy, forget_after: float = 3600.0
    ) -> None:
        self.delays = tuple(delays) or (0.0,)
        self.policy = policy
        self.forget_after = forget_after
        self._failures: dict[str, tuple[int, float]] = {}

    def next_delay(self, addr: str) -> float:
        if self.policy.is_trusted(addr):
            return 0.0
        count, last = self._failures.get(addr, (0, 0.0))
        if time.monotonic() - last > self.forget_after:
            count = 0
        return self.delays[min(count, len(self.delays) - 1)]

    async def failed(self, addr: str) -> None:
        """Record a failure and sleep for the penalty it earns."""
        delay = self.next_delay(addr)
        if not self.policy.is_trusted(addr):
            count, last = self._failures.get(addr, (0, 0.0))
            now = time.monotonic()
            if now - last > self.forget_after:
                count = 0
            self._failures[addr] = (count + 1, now)
            self._expire(now)
        if delay > 0:
            await asyncio.sleep(delay)

    def is_penalised(self, addr: str) -> bool:
        """Whether ``addr``'s next failure will be delayed for failures it already had.

        The login layer spends no decoy hashing on such an address (``Authenticator``).
        """
        if self.policy.is_trusted(addr):
            return False
        count, last = self._failures.get(addr, (0, 0.0))
        return count > 0 and time.monotonic() - last <= self.forget_after

    async def hold(self, addr: str) -> None:
        """Sleep the address's next penalty (at least the first step) before a temporary failure
        (a full login queue, the store down), without counting a failure: a client that retries
        at once would turn the cheap answer into a busy loop. Trusted networks never wait."""
        delay = self.next_delay(addr)
        if delay > 0:
            await asyncio.sleep(delay)

    def reset(self, addr: str) -> None:
        self._failures.pop(addr, None)

    def _expire(self, now: float) -> None:
        if len(self._failures) < 4096:
            return
        stale = [a for a, (_, last) in self._failures.items() if now - last > self.forget_after]
        for addr in stale:
            del self._failures[addr]


class BadCommandBudget:
    """Counts unknown or malformed commands; a session ends once the budget is spent."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def spend(self) -> bool:
        """Record one bad command; True when the client has now used up its budget."""
        self.count += 1
        return self.count >= self.limit


# Every character a log reader could misread: quotes and backslashes (which would end or
# escape the quoted value), controls (a CR/LF would forge a whole line), and anything
# outside printable ASCII (terminals and filters disagree about it).
_UNSAFE_IN_QUOTES = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_NAMED_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_TOKEN = re.compile(r"[A-Za-z0-9._:%-]+")
CLIENT_TEXT_MAX = 255


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def quoted(text: str) -> str:
    """Client-supplied text as one logfmt value: in double quotes, escaped, cut to 255 chars."""
    return '"' + _UNSAFE_IN_QUOTES.sub(_escape, text[:CLIENT_TEXT_MAX]) + '"'


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
) -> None:
    """The one log line per login attempt (logfmt). Never pass a secret: only names and outcomes.

    The server's own fields come first, the client-supplied ones last and always quoted, so
    a user name such as ``x client=203.0.113.9 result=ok`` stays inside ``user="..."``:
    ``smtp login result=failed mechanism=PLAIN client=127.0.0.5 tls=yes ms=3 user="x"``.
    ``result`` is one of ``ok failed malformed cancelled unavailable cleartext-refused
    too-long in-use mailbox-error``.
    """
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
    fields.append("user=-" if username is None else f"user={quoted(username)}")
    login_log.info("%s", " ".join(fields))
