"""Reading POP3 command lines with hard length limits."""

from __future__ import annotations

import asyncio

__all__ = ["COMMAND_LINE_MAX", "RESPONSE_LINE_MAX", "LineTooLong", "read_line"]

# RFC 2449: a command line is at most 255 octets including CRLF.
COMMAND_LINE_MAX = 255
# A SASL response line: 12288 octets of base64 (the core's limit) plus CRLF.
RESPONSE_LINE_MAX = 12288 + 2
# A client that streams this much without a line end is not a POP3 client.
_DISCARD_MAX = 1 << 20


class LineTooLong(Exception):
    """The line exceeded the limit; it has been read and discarded up to its end."""


async def read_line(reader: asyncio.StreamReader, limit: int) -> bytes | None:
    """One line without its CRLF (or bare LF); ``None`` at end of stream.

    Raises ``LineTooLong`` for a longer line (after discarding it), and
    ``ConnectionError`` when a client sends a megabyte without any line end.
    """
    discarded = 0
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError as overrun:
            discarded += overrun.consumed
            if discarded > _DISCARD_MAX:
                raise ConnectionError("line without end") from None
            try:
                await reader.readexactly(overrun.consumed)
            except asyncio.IncompleteReadError:
                return None
            continue
        if discarded or len(line) > limit:
            raise LineTooLong
        if line.endswith(b"\r\n"):
            return line[:-2]
        return line[:-1]
