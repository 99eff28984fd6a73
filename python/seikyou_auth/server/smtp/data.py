"""Reading the DATA section: dot-unstuffing, the size limit and the text-line limit.

Data ends only at CRLF.CRLF, and a message with a line ending in a bare LF is refused, as
Postfix does with ``smtpd_forbid_bare_newline``: a server that ended data at ``<LF>.<LF>``
while the relay in front of it did not would run the rest of the message as commands
("SMTP smuggling", CVE-2023-51764).
"""

from __future__ import annotations

from seikyou_auth.server.lines import LineReader, LineTooLong
from seikyou_auth.server.smtp.session import TEXT_LINE_MAX

__all__ = ["BareLineFeed", "MessageTooBig", "TextLineTooLong", "read_message"]


class MessageTooBig(Exception):
    """The message exceeded max_message_size (the rest was read and dropped)."""


class TextLineTooLong(Exception):
    """A line exceeded 1000 octets (the rest of the message was read and dropped)."""


class BareLineFeed(Exception):
    """A line ended in LF without CR (the rest of the message was read and dropped)."""


async def read_message(lines: LineReader, max_size: int) -> tuple[bytes, bool]:
    """Read up to CRLF.CRLF; return the message with LF line ends, and whether it has 8-bit.

    The whole message is read even when it is refused, so the session stays in
    step with the client. Nothing reaches the disk here.
    """
    chunks: list[bytes] = []
    size = 0
    too_big = False
    too_long = False
    bare_lf = False
    after_crlf = True  # data starts after the DATA command, however that ended
    while True:
        try:
            line = await lines.line(TEXT_LINE_MAX)
        except LineTooLong as error:
            too_long = True
            after_crlf = error.crlf
            bare_lf = bare_lf or not error.crlf
            continue
        if line == b".\r\n" and after_crlf:
            break
        after_crlf = line.endswith(b"\r\n")
        bare_lf = bare_lf or not after_crlf
        if line.startswith(b"."):
            line = line[1:]
        size += len(line)
        if size > max_size:
            too_big = True
        if too_big or too_long or bare_lf:
            chunks.clear()
            continue
        chunks.append(line[:-2] + b"\n")
    if too_big:
        raise MessageTooBig
    if too_long:
        raise TextLineTooLong
    if bare_lf:
        raise BareLineFeed
    body = b"".join(chunks)
    return body, not body.isascii()
