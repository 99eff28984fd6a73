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
from seikyou_auth.server.maildir import Spool
from seikyou_auth.server.smtp.session import TEXT_LINE_MAX

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
    def __init__(self, spool: Spool, max_size: int) -> None:
        self.spool = spool
        self.max_size = max_size
        self.size = 0  # with CRLF line ends, as SIZE (RFC 1870) counts
        self.refused: DataRefused | None = None
        self.eight_bit = False
        self.after_crlf = True  # data starts after the DATA command, however that ended

    async def block(self, block: bytes) -> None:
        """Whole lines, starting at a line start (unless already refused)."""
        if not block:
            return
        self.after_crlf = block.endswith(b"\r\n")
        if self.refused is not None:
            return
        if _LONG_LINE.search(block):
            self.refused = DataRefused.LINE_TOO_LONG
            return
        line_ends = block.count(b"\r\n")
        if block.count(b"\n") != line_ends or block.count(b"\r") != line_ends:
            self.refused = DataRefused.BARE_LINE_END
            return
        data = block.replace(b"\r\n", b"\n")
        if data.startswith(b"."):
            data = data[1:]
        data = data.replace(b"\n.", b"\n")
        self.size += len(data) + line_ends
        if self.size > self.max_size:
            self.refused = DataRefused.TOO_BIG
            return
        self.eight_bit = self.eight_bit or not data.isascii()
        await self.spool.write(data)


async def receive_message(
    lines: LineReader, spool: Spool, max_size: int
) -> tuple[DataRefused | None, bool]:
    """Read up to CRLF.CRLF into ``spool``: (why it was refused or None, whether it has 8-bit).

    ``spool`` holds the message with LF line ends when nothing was refused.
    """
    receiver = _Receiver(spool, max_size)
    flood = 2 * max_size + _FLOOD_MARGIN
    lines.start_data()
    try:
        while True:
            buffered = lines.buffered
            if receiver.after_crlf and buffered.startswith(b".\r\n"):
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
            if len(lines.buffered) >= TEXT_LINE_MAX:
                # The line so far is already too long: keep only its last octet, which tells
                # whether a CRLF.CRLF could start with the coming LF.
                receiver.refused = receiver.refused or DataRefused.LINE_TOO_LONG
                receiver.after_crlf = False
                lines.drop(len(lines.buffered) - 1)
            await lines.fill()
            if lines.data_received > flood:
                raise MessageFlood
    finally:
        lines.end_data()
    return receiver.refused, receiver.eight_bit
