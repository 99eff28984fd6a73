"""TRANSACTION-state commands (RFC 1939 §5, 7) and QUIT's UPDATE state (§6)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from seikyou_auth.server.mailbox import Mailbox, Message, MessageVanished
from seikyou_auth.server.pop3 import replies
from seikyou_auth.server.pop3.session import Session, State

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


async def _read(
    session: Session, message: Message, render: Callable[[bytes], bytes]
) -> bytes | None:
    """``render`` of the message's CRLF content, or None after answering -ERR when it vanished.

    Reading, converting and dot-stuffing a message costs time in its size, which has no bound
    small enough for the event loop: all of it runs in a thread.
    """
    mailbox = _mailbox(session)

    def read_and_render() -> bytes:
        return render(mailbox.read(message))

    try:
        return await asyncio.to_thread(read_and_render)
    except MessageVanished:
        log.warning("pop3 message %s vanished from %s", message.uidl, mailbox.path)
        await session.send(replies.err(f"Message {message.number} is no longer in the mailbox"))
        return None


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
    if message is None:
        return
    body = await _read(session, message, _retr_reply)
    if body is not None:
        await session.send(body)


def _retr_reply(data: bytes) -> bytes:
    return replies.ok(f"{len(data)} octets") + replies.stuffed_message(data)


async def top(session: Session, argument: bytes) -> None:
    parts = argument.split(b" ")
    lines = _number(parts[1]) if len(parts) == 2 else None
    if lines is None:
        await session.bad_command(replies.err("Usage: TOP message lines"))
        return
    message = await _message(session, parts[0])
    if message is None:
        return
    body = await _read(session, message, lambda data: _top_reply(data, lines))
    if body is not None:
        await session.send(body)


def _top_reply(data: bytes, lines: int) -> bytes:
    return replies.ok("Top of message follows") + _top(data, lines)


def _top(data: bytes, lines: int) -> bytes:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return replies.stuffed_message(data)
    head, body = data[: end + 4], data[end + 4 :]
    kept = body.split(b"\r\n")[:lines] if lines else []
    excerpt = b"".join(line + b"\r\n" for line in kept)
    # Cut back to the body's length: an unterminated last line gains its CRLF only once, below.
    return replies.stuffed_message(head + excerpt[: len(body)])


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
