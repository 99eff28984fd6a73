"""The state of one POP3 connection, shared by every command handler."""

from __future__ import annotations

import enum

import seikyou_auth
from seikyou_auth.sasl import CLEARTEXT_MECHANISMS
from seikyou_auth.server.connection import Connection
from seikyou_auth.server.context import ListenerContext
from seikyou_auth.server.lines import Closed
from seikyou_auth.server.policy import BadCommandBudget
from seikyou_auth.server.pop3 import replies
from seikyou_auth.storage.maildir_reader import Mailbox

__all__ = ["COMMAND_LINE_MAX", "Session", "State"]

# RFC 2449: a command line is at most 255 octets including CRLF.
COMMAND_LINE_MAX = 255


class State(enum.Enum):
    AUTHORIZATION = "authorization"
    TRANSACTION = "transaction"


class Session:
    """What one connection knows; the command handlers read and change it."""

    def __init__(self, conn: Connection, ctx: ListenerContext) -> None:
        self.conn = conn
        self.lines = conn.lines
        self.ctx = ctx
        self.peer = conn.peer
        self.state = State.AUTHORIZATION
        self.user: str | None = None
        self.mailbox: Mailbox | None = None
        self.apop_timestamp: bytes | None = None
        self.bad_commands = BadCommandBudget(ctx.config.limits.max_bad_commands)
        self.done = False
        conn.session = self

    @property
    def logged_in(self) -> bool:
        return self.state is State.TRANSACTION

    @property
    def tls_active(self) -> bool:
        return self.conn.tls_active

    @property
    def cleartext_allowed(self) -> bool:
        """USER/PASS, PLAIN and LOGIN on this connection, per ``pop3.cleartext_auth``."""
        return self.ctx.policy.cleartext_allowed(
            self.ctx.config.pop3.cleartext_auth, self.peer, self.tls_active
        )

    @property
    def stls_available(self) -> bool:
        return self.ctx.listener.tls == "starttls" and not self.tls_active

    def mechanisms(self) -> list[str]:
        """The SASL mechanisms this connection may use, in the configured order."""
        cleartext_ok = self.cleartext_allowed
        return [
            mechanism
            for mechanism in self.ctx.config.pop3.auth_mechanisms
            if cleartext_ok or mechanism not in CLEARTEXT_MECHANISMS
        ]

    async def send(self, data: bytes) -> None:
        await self.conn.send(data)

    async def bad_command(self, reply: bytes) -> None:
        """Answer a bad command; the session ends once the client has sent too many."""
        if self.bad_commands.spend():
            await self.send(replies.err("Too many bad commands, closing connection"))
            self.done = True
        else:
            await self.send(reply)

    async def read_line(self, limit: int) -> bytes | None:
        """One line without its CRLF (or bare LF); ``None`` once the client has closed.

        Raises ``LineTooLong`` for a longer line (after discarding it), and
        ``ConnectionError`` when a client sends a megabyte without any line end.
        """
        try:
            line = await self.lines.line(limit)
        except Closed:
            return None
        return line[:-2] if line.endswith(b"\r\n") else line[:-1]

    def greeting(self) -> bytes:
        hostname = self.ctx.config.hostname
        if not self.ctx.config.pop3.apop:
            return replies.ok(f"{hostname} POP3 ready")
        self.apop_timestamp = seikyou_auth.apop_timestamp(hostname)
        return replies.ok(f"{hostname} POP3 ready {self.apop_timestamp.decode('ascii')}")

    def release_mailbox(self) -> None:
        if self.mailbox is not None:
            self.mailbox.close()
            self.mailbox = None
