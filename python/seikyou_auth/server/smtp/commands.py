"""The command table and the commands that need no module of their own."""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Awaitable, Callable

from seikyou_auth.server.smtp import replies
from seikyou_auth.server.smtp.auth import auth_command
from seikyou_auth.server.smtp.session import Session
from seikyou_auth.server.smtp.transaction import data_command, mail_command, rcpt_command

__all__ = ["COMMANDS", "Command"]

log = logging.getLogger("seikyou_auth.smtp")

Command = Callable[[Session, str], Awaitable[None]]


def _valid_helo(argument: str) -> bool:
    return bool(argument) and len(argument) <= 255 and " " not in argument.strip()


async def ehlo(session: Session, argument: str) -> None:
    if not _valid_helo(argument.strip()):
        session.reply(replies.BAD_HELO)
        return
    session.helo = argument.strip()
    session.esmtp = True
    session.transaction = None
    smtp = session.ctx.config.smtp
    starttls = session.ctx.listener.tls == "starttls" and not session.tls_active
    mechanisms = session.offered_mechanisms() if session.account is None else []
    session.reply(
        _ehlo_reply(
            session.ctx.config.hostname,
            smtp.max_message_size,
            starttls,
            tuple(mechanisms),
            smtp.broken_auth_clients,
        )
    )


# Every session asks, and the answer depends on only a few settings and states.
@functools.lru_cache(maxsize=64)
def _ehlo_reply(
    hostname: str,
    max_message_size: int,
    starttls: bool,
    mechanisms: tuple[str, ...],
    broken_auth_clients: bool,
) -> bytes:
    keywords = [
        hostname,
        "PIPELINING",
        f"SIZE {max_message_size}",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
    ]
    if starttls:
        keywords.append("STARTTLS")
    if mechanisms:
        keywords.append("AUTH " + " ".join(mechanisms))
        if broken_auth_clients:
            # Outlook Express and its kin only recognise the pre-RFC "AUTH=" form.
            keywords.append("AUTH=" + " ".join(mechanisms))
    return replies.multiline(250, keywords)


async def helo(session: Session, argument: str) -> None:
    if not _valid_helo(argument.strip()):
        session.reply(b"501 5.5.4 Syntax: HELO hostname\r\n")
        return
    session.helo = argument.strip()
    session.esmtp = False
    session.transaction = None
    session.reply(f"250 {session.ctx.config.hostname}\r\n".encode())


async def starttls(session: Session, argument: str) -> None:
    if argument:
        session.reply(replies.BAD_SYNTAX)
        return
    if session.tls_active:
        session.reply(replies.TLS_ACTIVE)
        return
    if session.ctx.listener.tls != "starttls":
        session.reply(replies.TLS_NOT_OFFERED)
        return
    # Anything pipelined after STARTTLS arrived in cleartext: it must not count as
    # encrypted input (CVE-2011-0411 class of bugs).
    dropped = await session.conn.take_pipelined()
    if dropped:
        log.warning("client %s pipelined %d octets after STARTTLS; dropped", session.peer, dropped)
    session.reply(replies.READY_FOR_TLS)
    await session.drain()
    try:
        await session.conn.start_tls(
            session.ctx.ssl_context, session.ctx.config.limits.tls_handshake_timeout
        )
    except (ssl.SSLError, ConnectionError, TimeoutError) as error:
        log.info("STARTTLS with %s failed: %s", session.peer, error)
        session.closing = True
        return
    session.reset_for_tls()


async def rset(session: Session, argument: str) -> None:
    session.transaction = None
    session.reply(replies.OK)


async def noop(session: Session, argument: str) -> None:
    session.reply(replies.OK)


async def vrfy(session: Session, argument: str) -> None:
    if not argument:
        session.reply(replies.BAD_SYNTAX)
        return
    session.reply(replies.VRFY)


async def expn(session: Session, argument: str) -> None:
    session.reply(replies.NOT_IMPLEMENTED)


async def help_command(session: Session, argument: str) -> None:
    session.reply(replies.HELP)


async def quit_command(session: Session, argument: str) -> None:
    session.close_after(replies.BYE)


COMMANDS: dict[str, Command] = {
    "EHLO": ehlo,
    "HELO": helo,
    "STARTTLS": starttls,
    "AUTH": auth_command,
    "MAIL": mail_command,
    "RCPT": rcpt_command,
    "DATA": data_command,
    "RSET": rset,
    "NOOP": noop,
    "VRFY": vrfy,
    "EXPN": expn,
    "HELP": help_command,
    "QUIT": quit_command,
}
