"""The POP3 command table: which verbs exist, in which state, with which line limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from seikyou_auth.server.lines import AUTH_COMMAND_MAX
from seikyou_auth.server.pop3 import login, replies, transaction
from seikyou_auth.server.pop3.session import COMMAND_LINE_MAX, Session, State

__all__ = ["COMMANDS", "Command", "dispatch"]

Handler = Callable[[Session, bytes], Awaitable[None]]

_AUTHORIZATION = frozenset({State.AUTHORIZATION})
_TRANSACTION = frozenset({State.TRANSACTION})
_ANY = _AUTHORIZATION | _TRANSACTION


@dataclass(frozen=True, slots=True)
class Command:
    handler: Handler
    states: frozenset[State]
    line_max: int = COMMAND_LINE_MAX


COMMANDS: dict[bytes, Command] = {
    b"CAPA": Command(login.capa, _ANY),
    b"QUIT": Command(transaction.quit, _ANY),
    b"USER": Command(login.user, _AUTHORIZATION),
    b"PASS": Command(login.pass_, _AUTHORIZATION),
    b"APOP": Command(login.apop, _AUTHORIZATION),
    # RFC 5034 lets an AUTH initial response be as long as any other SASL response.
    b"AUTH": Command(login.auth, _AUTHORIZATION, AUTH_COMMAND_MAX),
    b"STLS": Command(login.stls, _AUTHORIZATION),
    b"STAT": Command(transaction.stat, _TRANSACTION),
    b"LIST": Command(transaction.list_, _TRANSACTION),
    b"RETR": Command(transaction.retr, _TRANSACTION),
    b"DELE": Command(transaction.dele, _TRANSACTION),
    b"NOOP": Command(transaction.noop, _TRANSACTION),
    b"RSET": Command(transaction.rset, _TRANSACTION),
    b"TOP": Command(transaction.top, _TRANSACTION),
    b"UIDL": Command(transaction.uidl, _TRANSACTION),
}


async def dispatch(session: Session, line: bytes) -> None:
    """Run one command line (without its CRLF)."""
    verb, _, argument = line.partition(b" ")
    command = COMMANDS.get(verb.upper())
    if command is None:
        await session.bad_command(replies.err("Unknown command"))
    elif len(line) + 2 > command.line_max:
        await session.bad_command(replies.err("Line too long"))
    elif session.state not in command.states:
        text = "Not logged in" if session.state is State.AUTHORIZATION else "Already logged in"
        await session.bad_command(replies.err(f"{text}: command not valid in this state"))
    else:
        await command.handler(session, argument)
