"""Reading the DATA section: dot-unstuffing, the size limit and the text-line limit."""

from __future__ import annotations

from seikyou_auth.server.lines import LineReader, LineTooLong
from seikyou_auth.server.smtp.session import TEXT_LINE_MAX

__all__ = ["MessageTooBig", "TextLineTooLong", "read_message"]


class MessageTooBig(Exception):
    """The message exceeded max_message_size (the rest was read and dropped)."""


class TextLineTooLong(Exception):
    """A line exceeded 1000 octets (the rest of the message was read and dropped)."""


async def read_message(lines: LineReader, max_size: int) -> tuple[bytes, bool]:
    """Read up to the lone ``.``; return the message with LF line ends, and whether it has 8-bit.

    The whole message is read even when it is refused, so the session stays in
    step with the client. Nothing reaches the disk here.
    """
    chunks: list[bytes] = []
    size = 0
    too_big = False
    too_long = False
    while True:
        try:
            line = await lines.line(TEXT_LINE_MAX)
        except LineTooLong:
            too_long = True
            continue
        if line in (b".\r\n", b".\n"):
            break
        if line.startswith(b"."):
            line = line[1:]
        size += len(line)
        if size > max_size:
            too_big = True
            chunks.clear()
        if too_big or too_long:
            continue
        chunks.append(line[:-2] + b"\n" if line.endswith(b"\r\n") else line)
    if too_big:
        raise MessageTooBig
    if too_long:
        raise TextLineTooLong
    body = b"".join(chunks)
    return body, not body.isascii()
