"""The connection layer under every line protocol (SMTP, POP3): one place for each defence.

A protocol module supplies ``handle_connection(conn, ctx)`` (its greeting and command
loop) and its ``GOODBYES``; everything a client can make the server spend is bounded
here, before and around that loop:

- **Admission** (``Admission``): the global and per-address caps are checked at accept,
  before any TLS handshake; at the global cap the oldest connection that has not logged
  in and sits waiting for input makes room (as Dovecot's login processes do), else the
  newcomer is refused with one short line. Refusals are logged once per interval.
- **Handshake**: implicit TLS is negotiated here, after admission, within
  ``tls_handshake_timeout``.
- **Backpressure** (``Connection.reply``/``drain``): replies are queued and sent before
  the next wait for input (RFC 2920 batching), and the session stops reading whenever
  more than ``HIGH_WATER`` octets are owed to a client that does not read them.
- **Time** (``server/idle.py``): command, DATA-rate and send-progress deadlines.
- **Fairness** (``server/lines.py``): a session yields to the loop every
  ``LINES_PER_TURN`` pipelined lines.
- **Goodbyes**: idle timeout, shutdown, eviction and internal errors end with the
  protocol's line, and a client that never reads its goodbye cannot keep the socket.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from seikyou_auth.server import metrics
from seikyou_auth.server.idle import IdleWatchdog
from seikyou_auth.server.lines import Closed, LineReader

if TYPE_CHECKING:
    from seikyou_auth.server.context import ListenerContext

__all__ = [
    "HIGH_WATER",
    "Admission",
    "Connection",
    "Goodbyes",
    "ThrottledLog",
    "serve_connection",
]

log = logging.getLogger("seikyou_auth.server")

# Octets owed to the client before the session stops reading its commands.
HIGH_WATER = 64 * 1024
# How long a closed connection may take to hand its last bytes to a client that does not read.
CLOSE_GRACE = 5.0


@dataclass(frozen=True)
class Goodbyes:
    """A protocol's last lines, one per way the connection layer ends a session."""

    idle: bytes
    shutdown: bytes
    too_many: bytes
    evicted: bytes
    internal_error: bytes


class LoginState(Protocol):
    @property
    def logged_in(self) -> bool: ...


class Connection:
    """One client connection: its streams, peer, reply queue, line reader and clock."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        goodbyes: Goodbyes,
        *,
        discard_max: int | None = None,
    ) -> None:
        self.goodbyes = goodbyes
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer: str = str(peer[0]) if isinstance(peer, tuple) else "unknown"
        self.lines = LineReader(reader, self._before_wait, discard_max)
        self._out: list[bytes] = []
        self._out_size = 0
        self.task: asyncio.Task[object] | None = asyncio.current_task()
        self.session: LoginState | None = None
        self.handshaking = False
        self.tls_pending = False  # a handshake began and has not succeeded (yet)
        self.evicted = False

    @property
    def tls_active(self) -> bool:
        return self.writer.get_extra_info("ssl_object") is not None

    @property
    def transport(self) -> asyncio.Transport:
        return cast(asyncio.Transport, self.writer.transport)

    @property
    def logged_in(self) -> bool:
        return self.session is not None and self.session.logged_in

    @property
    def evictable(self) -> bool:
        """Spends a slot without having logged in, and is waiting on the client."""
        if self.logged_in or self.lines.data_since is not None:
            return False
        return self.handshaking or self.lines.waiting

    def reply(self, data: bytes) -> None:
        """Queue a reply; it is sent before the next wait for input (RFC 2920 batching)."""
        self._out.append(data)
        self._out_size += len(data)

    def flush(self) -> None:
        if self._out:
            self.writer.write(b"".join(self._out))
            self._out.clear()
            self._out_size = 0

    @property
    def owed(self) -> int:
        """Octets of replies not yet taken by the client."""
        return self._out_size + self.transport.get_write_buffer_size()

    async def drain(self) -> None:
        """Send what is queued and wait until the client has taken all but HIGH_WATER of it."""
        self.flush()
        if self.transport.get_write_buffer_size() > HIGH_WATER:
            await self.writer.drain()

    async def send(self, data: bytes) -> None:
        self.reply(data)
        await self.drain()

    async def keep_up(self) -> None:
        """Between pipelined commands: stop and drain once too much is owed."""
        if self.owed > HIGH_WATER:
            await self.drain()

    async def _before_wait(self) -> None:
        await self.drain()

    async def start_tls(self, context: ssl.SSLContext, timeout: float) -> None:
        """Upgrade to TLS (STARTTLS/STLS after the guard, or implicit TLS at accept)."""
        self.handshaking = self.tls_pending = True
        try:
            await self.writer.start_tls(context, ssl_handshake_timeout=timeout)
        finally:
            self.handshaking = False
        self.tls_pending = False

    async def take_pipelined(self) -> int:
        """Before STARTTLS/STLS: stop reading, drop what the client pipelined, count it."""
        return await self.lines.take_pipelined(self.transport)

    def evict(self) -> None:
        """Make room for a newcomer: say goodbye and give the socket back at once."""
        self.evicted = True
        self.close(None if self.tls_pending else self.goodbyes.evicted)
        if self.task is not None:
            self.task.cancel()

    def close(self, goodbye: bytes | None) -> None:
        """Say goodbye if the socket still takes it, and close without waiting on the client."""
        writer = self.writer
        if not writer.is_closing():
            self.flush()
            if goodbye:
                writer.write(goodbye)
            writer.close()
        transport = self.transport
        if transport.get_write_buffer_size():
            asyncio.get_running_loop().call_later(CLOSE_GRACE, transport.abort)


class ThrottledLog:
    """A warning that could repeat per connection, logged at most once per ``interval``."""

    def __init__(self, message: str, interval: float = 60.0) -> None:
        self.message = message
        self.interval = interval
        self._next = 0.0
        self._suppressed = 0

    def note(self, *args: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self._suppressed += 1
            return
        suffix = f" (and {self._suppressed} more since the last report)" if self._suppressed else ""
        log.warning(self.message + suffix, *args)
        self._suppressed = 0
        self._next = now + self.interval


class Admission:
    """Connection slots: ``max_connections`` in all, ``per_address`` from one address.

    At the global cap a newcomer takes the slot of an idle connection that has not logged
    in, chosen from the address holding the most connections (its oldest), so a crowd from
    a few addresses churns among itself while a subscriber's single connection stays.
    """

    def __init__(self, max_connections: int, per_address: int) -> None:
        self.max_connections = max_connections
        self.per_address = per_address
        self._by_address: dict[str, dict[Connection, None]] = {}  # each oldest first
        self._open = 0
        self.refused_per_address = ThrottledLog("refused %s: too many connections from it")
        self.refused_full = ThrottledLog(
            "refused %s: %d connections open (max_connections), none could make room"
        )
        self.evictions = ThrottledLog("%d connections open: closed an idle one from %s")

    @property
    def open(self) -> int:
        return self._open

    def admit(self, conn: Connection) -> bool:
        mine = self._by_address.get(conn.peer)
        if mine is not None and len(mine) >= self.per_address:
            self.refused_per_address.note(conn.peer)
            metrics.CONNECTIONS_REFUSED.inc("per_address")
            return False
        if self._open >= self.max_connections:
            victim = self._victim()
            if victim is None:
                self.refused_full.note(conn.peer, self._open)
                metrics.CONNECTIONS_REFUSED.inc("max_connections")
                return False
            self.evictions.note(self._open, victim.peer)
            self.release(victim)
            victim.evict()
        self._by_address.setdefault(conn.peer, {})[conn] = None
        self._open += 1
        metrics.CONNECTIONS_OPEN.inc()
        return True

    def _victim(self) -> Connection | None:
        largest = max(self._by_address.values(), key=len)
        victim = next((conn for conn in largest if conn.evictable), None)
        if victim is None:
            crowds = self._by_address.values()
            victim = next((conn for crowd in crowds for conn in crowd if conn.evictable), None)
        return victim

    def release(self, conn: Connection) -> None:
        crowd = self._by_address.get(conn.peer)
        if crowd is None or conn not in crowd:
            return
        del crowd[conn]
        self._open -= 1
        metrics.CONNECTIONS_OPEN.dec()
        if not crowd:
            del self._by_address[conn.peer]


Handler = Callable[[Connection, "ListenerContext"], Awaitable[None]]

_CLIENT_GONE = (Closed, ConnectionError, ssl.SSLError, TimeoutError)


async def serve_connection(
    handler: Handler,
    goodbyes: Goodbyes,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    ctx: ListenerContext,
    admission: Admission,
    discard_max: int | None = None,
) -> None:
    """The whole life of one accepted connection: admission, TLS, the session, its end."""
    conn = Connection(reader, writer, goodbyes, discard_max=discard_max)
    implicit_tls = ctx.listener.tls == "implicit"
    if ctx.shutdown.stopping:
        conn.close(None if implicit_tls else goodbyes.shutdown)
        return
    if not admission.admit(conn):
        # An implicit-TLS client cannot read a cleartext line: it just sees the close.
        conn.close(None if implicit_tls else goodbyes.too_many)
        return
    limits = ctx.config.limits
    goodbye: bytes | None = None
    watchdog: IdleWatchdog | None = None
    try:
        if implicit_tls:
            await conn.start_tls(ctx.ssl_context, limits.tls_handshake_timeout)
        watchdog = IdleWatchdog(
            conn.lines, conn.writer, limits.idle_timeout, limits.min_data_rate, conn.task
        )
        await handler(conn, ctx)
        conn.flush()
    except asyncio.CancelledError:
        goodbye = _cancelled_goodbye(conn, watchdog, goodbyes, ctx)
    except _CLIENT_GONE:
        pass
    except Exception:
        log.exception("%s: session with %s failed", ctx.listener.label, conn.peer)
        goodbye = goodbyes.internal_error
    finally:
        if watchdog is not None:
            watchdog.stop()
        admission.release(conn)
        # Cleartext in the middle of a TLS handshake would only confuse the client.
        conn.close(None if conn.tls_pending else goodbye)


def _cancelled_goodbye(
    conn: Connection, watchdog: IdleWatchdog | None, goodbyes: Goodbyes, ctx: ListenerContext
) -> bytes | None:
    if watchdog is not None and watchdog.claim():
        return None if watchdog.sending else goodbyes.idle
    if conn.evicted and conn.task is not None:
        conn.task.uncancel()
        return None  # said and closed at eviction
    if ctx.shutdown.stopping:
        return goodbyes.shutdown
    return None
