"""The server side of the Dovecot authentication protocol (``protocol = "auth"``).

Postfix (``smtpd_sasl_type = dovecot``) and Exim (``driver = dovecot``) ask it to
check SASL exchanges; it answers with the same mechanisms, accounts, cleartext
policy, failure penalty and login log line as this server's own SMTP and POP3.
``wire`` holds the line format, ``requests`` the parsing of ``AUTH`` and the
per-connection request table, ``connection`` the command table and protocol.
"""

from __future__ import annotations

import asyncio
import socket

from seikyou_auth.server.context import ListenerContext
from seikyou_auth.server.dovecot_auth.connection import AuthConnection

__all__ = ["AuthConnection", "start_auth_server"]


async def start_auth_server(
    ctx: ListenerContext, sock: socket.socket, open_connections: set[AuthConnection]
) -> asyncio.Server:
    """Serve the auth protocol on ``sock`` (bound, UNIX or TCP); each connection is in
    ``open_connections`` while it lasts."""
    loop = asyncio.get_running_loop()
    if sock.family == socket.AF_UNIX:
        return await loop.create_unix_server(
            lambda: AuthConnection(ctx, open_connections), sock=sock
        )
    return await loop.create_server(lambda: AuthConnection(ctx, open_connections), sock=sock)
