"""Line reading with per-line limits over an asyncio stream, for every line protocol.

The buffer is ours (filled with ``StreamReader.read``) so that a session can
see what the client pipelined: SMTP batches replies until the input runs dry
(RFC 2920), both protocols refuse to treat plaintext sent after STARTTLS/STLS
as if it had arrived encrypted, and SMTP DATA scans whole blocks of lines at a
time instead of one line per call.

The reader also keeps the clock the idle watchdog reads (``server/idle.py``):
when it started waiting for the current line, when input last arrived, and how
much a DATA transfer has received. Bytes that arrive without completing a line
never move the command deadline, so a client trickling one byte at a time gains
nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import seikyou_auth

__all__ = [
    "AUTH_COMMAND_MAX",
    "LINES_PER_TURN",
    "SASL_RESPONSE_MAX",
    "Closed",
    "LineReader",
    "LineTooLong",
]

# RFC 4954 §4 and RFC 5034 §4: a SASL response line of 12288 octets plus CRLF.
SASL_RESPONSE_MAX = seikyou_auth.MAX_RESPONSE_OCTETS + 2
# An AUTH command carries its initial response on the command line itself.
AUTH_COMMAND_MAX = len(b"AUTH CRAM-MD5 ") + SASL_RESPONSE_MAX

# More than a stream ever buffers (its flow control pauses at twice its limit, and a
# transport delivers at most 256 KiB at once), so each read takes everything the client has
# sent so far into our buffer, where the STARTTLS/STLS guard can see it.
READ_SIZE = 1 << 20

# Lines served from one read before the session lets other connections run: a client that
# pipelines thousands of commands gets no more of the loop at a time than this.
LINES_PER_TURN = 16


class Closed(Exception):
    """The client closed the connection (possibly in the middle of a line)."""


class LineTooLong(Exception):
    """A line exceeded its limit; it has been read and thrown away up to its end.

    ``crlf`` tells whether that end was CRLF.
    """

    def __init__(self, crlf: bool) -> None:
        super().__init__()
        self.crlf = crlf


class LineReader:
    """Lines of at most the limit each call names (the protocol's command, text or
    SASL response limit), terminator included.

    ``before_wait`` runs whenever the reader is about to block on the client (the
    connection sends the replies it owes there). ``discard_max`` bounds how much of
    one overlong line is read and thrown away before the client is given up on
    (ConnectionError).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        before_wait: Callable[[], Awaitable[None]] | None = None,
        discard_max: int | None = None,
    ) -> None:
        self._reader = reader
        self._buffer = bytearray()
        self._before_wait = before_wait
        self._discard_max = discard_max
        self._loop = asyncio.get_running_loop()
        self._served = 0  # lines served since the last read from the socket
        self.waiting = False  # blocked on the client right now
        self.last_input = self._loop.time()
        # When the reader first waited for the line it is reading now (None: not waiting yet).
        self.line_since: float | None = None
        # During a DATA transfer: when it started and how many octets it has received.
        self.data_since: float | None = None
        self.data_received = 0

    async def take_pipelined(self, transport: asyncio.Transport) -> int:
        """Stop reading the socket ahead of a TLS upgrade; drop and count what was pipelined.

        Input that arrived in cleartext must never be read as if it came inside TLS
        (CVE-2011-0411). Pausing the transport keeps new bytes out of the stream until
        ``start_tls`` takes the socket over; the probe collects what reached the stream
        since our last read (it completes at once only when bytes are waiting).
        """
        transport.pause_reading()
        pending = len(self._buffer)
        self._buffer.clear()
        probe = asyncio.ensure_future(self._reader.read(READ_SIZE))
        await asyncio.sleep(0)
        # Draining the stream may have resumed a transport its flow control had paused.
        transport.pause_reading()
        if probe.done():
            pending += len(probe.result())
        else:
            probe.cancel()
            await asyncio.wait({probe})
        return pending

    async def fill(self) -> None:
        """Wait for more input from the client (after sending what is owed)."""
        if self._before_wait is not None:
            await self._before_wait()
        if self.line_since is None:
            self.line_since = self._loop.time()
        self.waiting = True
        try:
            chunk = await self._reader.read(READ_SIZE)
        finally:
            self.waiting = False
        if not chunk:
            raise Closed
        self._served = 0
        self.last_input = self._loop.time()
        if self.data_since is not None:
            self.data_received += len(chunk)
        self._buffer += chunk

    async def line(self, limit: int) -> bytes:
        """The next line with its terminator, at most ``limit`` octets; else LineTooLong."""
        self._served += 1
        if self._served > LINES_PER_TURN:
            self._served = 0
            await asyncio.sleep(0)
        scanned = 0
        while True:
            end = self._buffer.find(b"\n", scanned)
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                self.line_since = None
                if len(line) > limit:
                    raise LineTooLong(line.endswith(b"\r\n"))
                return line
            scanned = len(self._buffer)
            if scanned > limit:
                raise LineTooLong(await self._skip_rest_of_line())
            await self.fill()

    # -- block access for SMTP DATA ---------------------------------------------------------

    def start_data(self) -> None:
        """From now on the watchdog holds the client to a minimum transfer rate."""
        self.data_since = self._loop.time()
        self.data_received = len(self._buffer)

    def end_data(self) -> None:
        self.data_since = None
        self.data_received = 0
        self.line_since = None

    @property
    def buffered(self) -> bytearray:
        """What has arrived and not been consumed yet (DATA scans it in place)."""
        return self._buffer

    def consume(self, size: int) -> bytes:
        """Take the first ``size`` octets of the buffer."""
        taken = bytes(self._buffer[:size])
        del self._buffer[:size]
        return taken

    def drop(self, size: int) -> None:
        del self._buffer[:size]

    async def _skip_rest_of_line(self) -> bool:
        """Throw the rest of the line away; whether it ended in CRLF."""
        discarded = 0
        last = b""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                before = bytes(self._buffer[end - 1 : end]) if end else last
                del self._buffer[: end + 1]
                self.line_since = None
                return before == b"\r"
            discarded += len(self._buffer)
            if self._discard_max is not None and discarded > self._discard_max:
                raise ConnectionError("line without end")
            last = bytes(self._buffer[-1:])
            self._buffer.clear()
            await self.fill()
