"""The life of one POP3 connection: greeting and command loop.

Time limits, backpressure, admission and goodbyes are the connection layer's
(``server/connection.py``); this module only speaks POP3.
"""

from __future__ import annotations

from seikyou_auth.server.connection import Connection, Goodbyes
from seikyou_auth.server.context import ListenerContext
from seikyou_auth.server.lines import AUTH_COMMAND_MAX, LineTooLong
from seikyou_auth.server.pop3 import replies
from seikyou_auth.server.pop3.commands import dispatch
from seikyou_auth.server.pop3.session import Session

__all__ = ["DISCARD_MAX", "GOODBYES", "handle_connection"]

GOODBYES = Goodbyes(
    # RFC 1939 §3: the autologout timer never enters the UPDATE state.
    idle=replies.err("Disconnected for inactivity"),
    shutdown=replies.err("Server shutting down, try again later", "SYS/TEMP"),
    too_many=replies.err("Too many connections from your address, try again later", "SYS/TEMP"),
    evicted=replies.err("Server busy: too many connections, try again later", "SYS/TEMP"),
    internal_error=replies.err("Internal server error, closing connection", "SYS/TEMP"),
)

# A client that streams this much without a line end is not a POP3 client.
DISCARD_MAX = 1 << 20


async def handle_connection(conn: Connection, ctx: ListenerContext) -> None:
    """Serve one POP3 client until QUIT, too many bad commands or disconnect."""
    session = Session(conn, ctx)
    try:
        await session.send(session.greeting())
        while not session.done:
            try:
                line = await session.read_line(AUTH_COMMAND_MAX)
            except LineTooLong:
                await session.bad_command(replies.err("Line too long"))
                continue
            if line is None:
                break
            await dispatch(session, line)
    finally:
        # Only QUIT's UPDATE state deletes; every other end leaves the mailbox as it was.
        session.release_mailbox()
