"""TRANSACTION-state commands (RFC 1939 §5, 7) and QUIT's UPDATE state (§6)."""

from __future__ import annotations

import asyncio
import logging

from seikyou_auth.server.pop3 import replies
from seikyou_auth.server.pop3.session import Session, State
from seikyou_auth.storage.maildir_reader import Mailbox, Message, MessageVanished

__all__ = ["dele", "list_", "noop", "quit", "retr", "rset", "stat", "top", "uidl"]

log = logging.getLogger("seikyou_auth.pop3")


def _mailbox(session: Session) -> Mailbox:
    assert session.mailbox is not None, "TRANSACTION state always has a mailbox"
    return session.mailbox


def _number(text: bytes) -> int | None:
    if not text.isdigit() or len(text) > 10:
        return None
    return int(text)


async def _message(session: Session, text: bytes) -> Message | None:
    """The message an argument names, or None after answering -ERR."""
    number = _number(text)
    if number is None:
        await session.bad_command(replies.err("Invalid message number"))
        return None
    message = _mailbox(session).get(number)
    if message is None:
        await session.send(replies.err(f"No such message: {number}"))
    return message


# How much of a message is read, converted and sent at a time: RETR and TOP hold this much of
# it in memory, never the whole message.
_CHUNK = 64 * 1024


class _Stuffer:
    """A message's bytes as a POP3 multi-line body, chunk by chunk (RFC 1939 §3).

    Line ends become CRLF (a lone CR stays), lines starting with '.' get another, and the
    body ends in CRLF and the '.' line. A CR at the end of a chunk waits for the next one, so
    a CRLF is never split.
    """

    def __init__(self) -> None:
        self.at_line_start = True
        self.held_cr = False

    def crlf(self, chunk: bytes) -> bytes:
        if self.held_cr:
            chunk = b"\r" + chunk
        self.held_cr = chunk.endswith(b"\r")
        if self.held_cr:
            chunk = chunk[:-1]
        return chunk.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    def stuff(self, data: bytes) -> bytes:
        if not data:
            return data
        if self.at_line_start and data.startswith(b"."):
            data = b"." + data
        self.at_line_start = data.endswith(b"\r\n")
        return data.replace(b"\r\n.", b"\r\n..")

    def end(self) -> bytes:
        tail = self.stuff(b"\r") if self.held_cr else b""
        return tail + (b"" if self.at_line_start else b"\r\n") + b".\r\n"


class _TopCut:
    """TOP: the headers, the blank line and then ``lines`` lines of the body (CRLF text)."""

    def __init__(self, lines: int) -> None:
        self.lines = lines
        self.recent = b""  # the last octets before this chunk, for a blank line split by it
        self.in_body = False
        self.done = False

    def cut(self, data: bytes) -> bytes:
        if self.done:
            return b""
        if self.in_body:
            return self._body(data)
        window = self.recent + data
        end = window.find(b"\r\n\r\n")
        if end < 0:
            self.recent = window[-3:]
            return data
        self.in_body = True
        body_start = end + 4 - len(self.recent)
        return data[:body_start] + self._body(data[body_start:])

    def _body(self, data: bytes) -> bytes:
        position = 0
        while self.lines:
            found = data.find(b"\r\n", position)
            if found < 0:
                return data
            self.lines -= 1
            position = found + 2
        self.done = True
        return data[:position]


async def _send_message(
    session: Session, message: Message, first_line: bytes, top: _TopCut | None = None
) -> None:
    """Send ``first_line`` and the message, a chunk at a time; file work in a thread.

    Reading, converting and dot-stuffing cost time in the message's size, which has no bound
    small enough for the event loop, and memory, which must not grow with it.
    """
    mailbox = _mailbox(session)
    try:
        handle = await asyncio.to_thread(mailbox.open_message, message)
    except MessageVanished:
        log.warning("pop3 message %s vanished from %s", message.uidl, mailbox.path)
        await session.send(replies.err(f"Message {message.number} is no longer in the mailbox"))
        return
    stuffer = _Stuffer()

    def next_part() -> bytes | None:
        chunk = handle.read(_CHUNK)
        if not chunk:
            return None
        data = stuffer.crlf(chunk)
        if top is not None:
            data = top.cut(data)
        return stuffer.stuff(data)

    try:
        session.conn.reply(first_line)
        while top is None or not top.done:
            part = await asyncio.to_thread(next_part)
            if part is None:
                break
            await session.send(part)
        if top is not None and top.done:
            stuffer.held_cr = False  # the cut ended at a CRLF: nothing of the rest is sent
        await session.send(stuffer.end())
    finally:
        handle.close()


async def stat(session: Session, argument: bytes) -> None:
    live = _mailbox(session).live()
    await session.send(replies.ok(f"{len(live)} {sum(message.size for message in live)}"))


async def list_(session: Session, argument: bytes) -> None:
    if argument:
        message = await _message(session, argument)
        if message is not None:
            await session.send(replies.ok(f"{message.number} {message.size}"))
        return
    live = _mailbox(session).live()
    size = sum(message.size for message in live)
    lines = (f"{message.number} {message.size}" for message in live)
    await session.send(replies.multiline(f"{len(live)} messages ({size} octets)", lines))


async def uidl(session: Session, argument: bytes) -> None:
    if argument:
        message = await _message(session, argument)
        if message is not None:
            await session.send(replies.ok(f"{message.number} {message.uidl}"))
        return
    lines = (f"{message.number} {message.uidl}" for message in _mailbox(session).live())
    await session.send(replies.multiline("Unique-ID listing follows", lines))


async def retr(session: Session, argument: bytes) -> None:
    message = await _message(session, argument)
    if message is not None:
        await _send_message(session, message, replies.ok(f"{message.size} octets"))


async def top(session: Session, argument: bytes) -> None:
    parts = argument.split(b" ")
    lines = _number(parts[1]) if len(parts) == 2 else None
    if lines is None:
        await session.bad_command(replies.err("Usage: TOP message lines"))
        return
    message = await _message(session, parts[0])
    if message is not None:
        first_line = replies.ok("Top of message follows")
        await _send_message(session, message, first_line, _TopCut(lines))


async def dele(session: Session, argument: bytes) -> None:
    message = await _message(session, argument)
    if message is not None:
        message.deleted = True
        await session.send(replies.ok(f"Message {message.number} deleted"))


async def noop(session: Session, argument: bytes) -> None:
    await session.send(replies.ok())


async def rset(session: Session, argument: bytes) -> None:
    mailbox = _mailbox(session)
    mailbox.reset()
    await session.send(replies.ok(f"{len(mailbox.messages)} messages"))


async def quit(session: Session, argument: bytes) -> None:
    session.done = True
    if session.state is not State.TRANSACTION:
        await session.send(replies.ok("Bye"))
        return
    mailbox = _mailbox(session)
    deleted = sum(message.deleted for message in mailbox.messages)
    try:
        with session.ctx.shutdown.busy():
            failures = await asyncio.to_thread(mailbox.commit) if deleted else 0
    except OSError:
        log.exception("pop3 could not update %s", mailbox.path)
        failures = deleted
    session.release_mailbox()
    if failures:
        await session.send(replies.err("Some deleted messages not removed", "SYS/TEMP"))
    else:
        await session.send(replies.ok(f"Logging out, {deleted} messages deleted"))
