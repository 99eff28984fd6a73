"""The life of one POP3 connection: greeting, command loop, and its end."""

from __future__ import annotations

import asyncio
import logging
import ssl

from seikyou_auth.server.context import ListenerContext
from seikyou_auth.server.idle import IdleWatchdog
from seikyou_auth.server.lines import AUTH_COMMAND_MAX, LineTooLong
from seikyou_auth.server.pop3 import replies
from seikyou_auth.server.pop3.commands import dispatch
from seikyou_auth.server.pop3.session import Session

__all__ = ["handle_connection"]

log = logging.getLogger("seikyou_auth.pop3")


async def handle_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ListenerContext
) -> None:
    """Serve one POP3 client until QUIT, idle timeout, too many bad commands or disconnect."""
    session = Session(reader, writer, ctx)
    watchdog = IdleWatchdog(session.lines, ctx.config.limits.idle_timeout)
    close = True
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
    except asyncio.CancelledError:
        if watchdog.claim():
            # RFC 1939 §3: the autologout timer never enters the UPDATE state.
            await session.send(replies.err("Disconnected for inactivity"))
            return
        # Cancelled by shutdown: app.py still has to send its -ERR line, then it closes.
        close = False
        raise
    except (ConnectionError, ssl.SSLError, TimeoutError):
        pass
    except Exception:
        log.exception("pop3 session with %s failed", session.peer)
        if not writer.is_closing():
            writer.write(replies.err("Internal server error, closing connection", "SYS/TEMP"))
    finally:
        watchdog.stop()
        # Only QUIT's UPDATE state deletes; every other end leaves the mailbox as it was.
        session.release_mailbox()
        if close:
            await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, ssl.SSLError, TimeoutError):
        pass
