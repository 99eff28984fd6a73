"""Line reading with per-line limits over an asyncio stream.

The buffer is ours (filled with ``StreamReader.read``) so that the session can
see whether the client pipelined more input: replies are batched until the
input runs dry (RFC 2920), and plaintext sent after STARTTLS is discarded
rather than read as if it had arrived encrypted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Closed", "LineReader", "LineTooLong"]

READ_SIZE = 65536


class Closed(Exception):
    """The client closed the connection (possibly in the middle of a line)."""


class LineTooLong(Exception):
    """A line exceeded its limit; it has been read and thrown away up to its end."""


class LineReader:
    def __init__(self, reader: asyncio.StreamReader, before_wait: Callable[[], None]) -> None:
        self._reader = reader
        self._buffer = bytearray()
        self._before_wait = before_wait
        self._loop = asyncio.get_running_loop()
        self.waiting = False  # blocked on the client right now
        self.last_input = self._loop.time()

    def has_line(self) -> bool:
        return b"\n" in self._buffer

    def discard_buffered(self) -> int:
        count = len(self._buffer)
        self._buffer.clear()
        return count

    async def _fill(self) -> None:
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
                    raise LineTooLong
                return line
            scanned = len(self._buffer)
            if scanned > limit:
                await self._skip_rest_of_line()
                raise LineTooLong
            await self._fill()

    async def _skip_rest_of_line(self) -> None:
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                del self._buffer[: end + 1]
                return
            self._buffer.clear()
            await self._fill()
