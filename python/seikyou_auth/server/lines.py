"""Line reading with per-line limits over an asyncio stream, for SMTP and POP3.

The buffer is ours (filled with ``StreamReader.read``) so that a session can
see what the client pipelined: SMTP batches replies until the input runs dry
(RFC 2920), and both protocols refuse to treat plaintext sent after
STARTTLS/STLS as if it had arrived encrypted, without touching the stream's
private attributes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["AUTH_COMMAND_MAX", "SASL_RESPONSE_MAX", "Closed", "LineReader", "LineTooLong"]

# RFC 4954 §4 and RFC 5034 §4: a SASL response line of 12288 octets plus CRLF.
SASL_RESPONSE_MAX = 12288 + 2
# An AUTH command carries its initial response on the command line itself.
AUTH_COMMAND_MAX = len(b"AUTH CRAM-MD5 ") + SASL_RESPONSE_MAX

# More than a stream ever buffers (its flow control pauses at twice its 64 KiB limit, and a
# transport delivers at most 256 KiB at once), so each read takes everything the client has
# sent so far into our buffer, where the STARTTLS/STLS guard can see it.
READ_SIZE = 1 << 20


class Closed(Exception):
    """The client closed the connection (possibly in the middle of a line)."""


class LineTooLong(Exception):
    """A line exceeded its limit; it has been read and thrown away up to its end.

    ``crlf`` tells whether that end was CRLF: SMTP DATA needs it to find the real end of data.
    """

    def __init__(self, crlf: bool) -> None:
        super().__init__()
        self.crlf = crlf


class LineReader:
    """Lines of at most the limit each call names (the protocol's command, text or
    SASL response limit), terminator included.

    ``before_wait`` runs whenever the reader is about to block on the client (SMTP
    sends its batched replies there). ``discard_max`` bounds how much of one overlong
    line is read and thrown away before the client is given up on (ConnectionError).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        before_wait: Callable[[], None] | None = None,
        discard_max: int | None = None,
    ) -> None:
        self._reader = reader
        self._buffer = bytearray()
        self._before_wait = before_wait
        self._discard_max = discard_max
        self._loop = asyncio.get_running_loop()
        self.waiting = False  # blocked on the client right now
        self.last_input = self._loop.time()

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

    async def _fill(self) -> None:
        if self._before_wait is not None:
            self._before_wait()
        self.waiting = True
        try:
            chunk = await self._reader.read(READ_SIZE)
        finally:
            self.waiting = False
        if not chunk:
            raise Closed
        self.last_input = self._loop.time()
        self._buffer += chunk

    async def line(self, limit: int) -> bytes:
        """The next line with its terminator, at most ``limit`` octets; else LineTooLong."""
        scanned = 0
        while True:
            end = self._buffer.find(b"\n", scanned)
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                if len(line) > limit:
                    raise LineTooLong(line.endswith(b"\r\n"))
                return line
            scanned = len(self._buffer)
            if scanned > limit:
                raise LineTooLong(await self._skip_rest_of_line())
            await self._fill()

    async def _skip_rest_of_line(self) -> bool:
        """Throw the rest of the line away; whether it ended in CRLF."""
        discarded = 0
        last = b""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                before = bytes(self._buffer[end - 1 : end]) if end else last
                del self._buffer[: end + 1]
                return before == b"\r"
            discarded += len(self._buffer)
            if self._discard_max is not None and discarded > self._discard_max:
                raise ConnectionError("line without end")
            last = bytes(self._buffer[-1:])
            self._buffer.clear()
            await self._fill()
