"""Receiving the DATA section: streamed to disk, dot-unstuffed, checked as it arrives.

The message goes to a ``Spool`` file chunk by chunk, so a connection holds one read's
worth of it in memory however large it is. Blocks of whole lines are scanned at once
(bytes methods, no per-line Python work), which also keeps a flood of tiny lines cheap.

Data ends only at CRLF.CRLF, and a message with a bare LF or a bare CR anywhere is
refused (RFC 5321 2.3.8; Postfix's ``smtpd_forbid_bare_newline``): a server that ended
data at ``<LF>.<LF>`` or ``<CR>.<CR>`` while the relay before or after it did not would
run the rest of the message as commands ("SMTP smuggling", CVE-2023-51764). A refused
message is still read to its end, so the session stays in step with the client; one that
keeps coming long past the size limit ends the connection.
"""

from __future__ import annotations

import enum
import re

from seikyou_auth.server.lines import LineReader
from seikyou_auth.server.smtp.session import TEXT_LINE_MAX
from seikyou_auth.storage.spool import Spool

__all__ = ["DataRefused", "MessageFlood", "receive_message"]

# A line of more than TEXT_LINE_MAX octets with its CRLF: TEXT_LINE_MAX - 1 octets before LF.
_LONG_LINE = re.compile(rb"^[^\n]{%d}" % (TEXT_LINE_MAX,), re.MULTILINE)
_END = b"\r\n.\r\n"
# Past this much beyond the size limit, a client is not sending a message but a flood.
_FLOOD_MARGIN = 1 << 20


class DataRefused(enum.Enum):
    TOO_BIG = "too-big"
    LINE_TOO_LONG = "line-too-long"
    BARE_LINE_END = "bare-line-end"


class MessageFlood(Exception):
    """The client went on sending far past the size limit without ending the data."""


class _Receiver:
    """What DATA has received so far; the outcome does not depend on how TCP split it."""

    def __init__(self, spool: Spool, max_size: int) -> None:
        self.spool = spool
        self.max_size = max_size
        self.size = 0  # after dot-unstuffing, with CRLF line ends, as SIZE (RFC 1870) counts
        self.too_big = False
        self.too_long = False
        self.bare = False
        self.eight_bit = False
        self.at_line_start = True
        self.after_crlf = True  # data starts after the DATA command, however that ended

    @property
    def refused(self) -> DataRefused | None:
        if self.too_big:
            return DataRefused.TOO_BIG
        if self.too_long:
            return DataRefused.LINE_TOO_LONG
        if self.bare:
            return DataRefused.BARE_LINE_END
        return None

    async def block(self, block: bytes) -> None:
        """Whole lines (the first possibly the rest of an overlong one)."""
        if not block:
            return
        stuffed = block.count(b"\n.") + (self.at_line_start and block.startswith(b"."))
        self.size += len(block) - stuffed
        self.too_big = self.too_big or self.size > self.max_size
        self.too_long = self.too_long or _LONG_LINE.search(block) is not None
        line_ends = block.count(b"\r\n")
        if block.count(b"\n") != line_ends or block.count(b"\r") != line_ends:
            self.bare = True
        if self.refused is None:
            data = block.replace(b"\r\n", b"\n")
            if data.startswith(b"."):
                data = data[1:]
            data = data.replace(b"\n.", b"\n")
            self.eight_bit = self.eight_bit or not data.isascii()
            await self.spool.write(data)
        self.at_line_start = True
        self.after_crlf = block.endswith(b"\r\n")

    def overlong(self, dropped: bytes) -> None:
        """Part of a line already too long, thrown away (its last octet stays buffered)."""
        stuffed = self.at_line_start and dropped.startswith(b".")
        self.size += len(dropped) - stuffed
        self.too_big = self.too_big or self.size > self.max_size
        # A bare CR in it would not change the reply: a line too long is named first.
        self.too_long = True
        self.at_line_start = False


async def receive_message(
    lines: LineReader, spool: Spool, max_size: int
) -> tuple[DataRefused | None, bool]:
    """Read up to CRLF.CRLF into ``spool``: (why it was refused or None, whether it has 8-bit).

    ``spool`` holds the message with LF line ends when nothing was refused. When several
    things are wrong, the reply names the first of: too big, line too long, bare CR/LF.
    """
    receiver = _Receiver(spool, max_size)
    flood = 2 * max_size + _FLOOD_MARGIN
    lines.start_data()
    try:
        while True:
            buffered = lines.buffered
            at_end = receiver.at_line_start and receiver.after_crlf
            if at_end and buffered.startswith(b".\r\n"):
                lines.drop(3)
                break
            end = buffered.find(_END)
            if end >= 0:
                await receiver.block(lines.consume(end + 2))
                lines.drop(3)
                break
            last_line_end = buffered.rfind(b"\n")
            if last_line_end >= 0:
                await receiver.block(lines.consume(last_line_end + 1))
            partial = len(lines.buffered)
            if partial >= TEXT_LINE_MAX or (partial > 1 and not receiver.at_line_start):
                # Keep only the last octet: whether a CRLF.CRLF can start with the coming LF.
                receiver.overlong(lines.consume(partial - 1))
            await lines.fill()
            if lines.data_received > flood:
                raise MessageFlood
    finally:
        lines.end_data()
    return receiver.refused, receiver.eight_bit
