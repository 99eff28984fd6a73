"""``handle_connection``: greeting, the command loop and the error budget.

Time limits, backpressure, admission and goodbyes are the connection layer's
(``server/connection.py``); this module only speaks SMTP.
"""

from __future__ import annotations

from seikyou_auth.server.connection import Connection, Goodbyes, ThrottledLog
from seikyou_auth.server.context import ListenerContext
from seikyou_auth.server.lines import AUTH_COMMAND_MAX, LineTooLong
from seikyou_auth.server.smtp import replies
from seikyou_auth.server.smtp.commands import COMMANDS
from seikyou_auth.server.smtp.session import COMMAND_LINE_MAX, Session

__all__ = ["DISCARD_MAX", "GOODBYES", "handle_connection"]

GOODBYES = Goodbyes(
    idle=replies.IDLE_TIMEOUT,
    shutdown=replies.SHUTTING_DOWN,
    too_many=replies.TOO_MANY_CONNECTIONS,
    evicted=replies.SERVER_BUSY,
    internal_error=replies.INTERNAL_ERROR,
)

# A client that streams this much without a line end is not an SMTP client.
DISCARD_MAX = 1 << 20

# Replies that mean "the client got something wrong": they spend the bad-command budget.
# Not 535 (failed logins have their own growing delay) and not 550/552 (an MX peer may
# legitimately hit several unknown users or an oversized message).
_BAD_CODES = (b"500", b"501", b"502", b"503", b"504", b"530", b"553", b"554", b"555")

# RFC 2920 3.1: these must end a pipeline group. Input already waiting behind one means the
# client does not wait for replies; from a client that has not logged in that is a flood or a
# bot, never a mail client (Postfix's smtpd_forbid_unauth_pipelining), so it is cut off before
# it can queue thousands of commands. STARTTLS has its own rule (the pipelined bytes are dropped).
_LAST_IN_GROUP = frozenset({"EHLO", "HELO", "NOOP", "VRFY", "EXPN"})
_UNSYNCHRONISED = ThrottledLog("client %s pipelined commands after %s; disconnected")


async def handle_connection(conn: Connection, ctx: ListenerContext) -> None:
    session = Session(conn, ctx)
    session.reply(f"220 {ctx.hostname} ESMTP seikyou-auth\r\n".encode())
    while not session.closing:
        if ctx.shutdown.stopping:
            session.close_after(replies.SHUTTING_DOWN)
            break
        try:
            line = await session.lines.line(AUTH_COMMAND_MAX)
        except LineTooLong:
            _bad(session, replies.LINE_TOO_LONG)
            continue
        await _dispatch(session, line)
        await conn.keep_up()
    await conn.drain()


async def _dispatch(session: Session, raw: bytes) -> None:
    text = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
    verb_bytes, _, _ = text.partition(b" ")
    if len(raw) > COMMAND_LINE_MAX and verb_bytes.upper() != b"AUTH":
        _bad(session, replies.LINE_TOO_LONG)
        return
    if not text.isascii() or b"\0" in text or b"\r" in text:
        _bad(session, replies.UNKNOWN_COMMAND)
        return
    verb, _, argument = text.decode("ascii").partition(" ")
    command = COMMANDS.get(verb.upper())
    if command is None:
        _bad(session, replies.UNKNOWN_COMMAND)
        return
    session.last_reply = b""
    await command(session, argument.strip())
    verb = verb.upper()
    if verb in _LAST_IN_GROUP and session.account is None and session.lines.buffered:
        _UNSYNCHRONISED.note(session.peer, verb)
        session.close_after(replies.PIPELINING_VIOLATION)
        return
    if session.last_reply[:3] in _BAD_CODES:
        _count_bad(session)


def _bad(session: Session, reply: bytes) -> None:
    session.reply(reply)
    _count_bad(session)


def _count_bad(session: Session) -> None:
    if session.bad_commands.spend():
        session.close_after(replies.TOO_MANY_ERRORS)
