"""The state of one POP3 connection, shared by every command handler."""

from __future__ import annotations

import asyncio
import enum

import seikyou_auth
from seikyou_auth.sasl import CLEARTEXT_MECHANISMS
from seikyou_auth.server.context import ListenerContext
from seikyou_auth.server.mailbox import Mailbox
from seikyou_auth.server.policy import BadCommandBudget
from seikyou_auth.server.pop3 import replies
from seikyou_auth.server.pop3.lines import read_line

__all__ = ["Session", "State"]


class State(enum.Enum):
    AUTHORIZATION = "authorization"
    TRANSACTION = "transaction"


class Session:
    """What one connection knows; the command handlers read and change it."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ListenerContext
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.ctx = ctx
        peer = writer.get_extra_info("peername")
        self.peer: str = peer[0] if isinstance(peer, tuple) else "unknown"
        self.state = State.AUTHORIZATION
        self.user: str | None = None
        self.mailbox: Mailbox | None = None
        self.apop_timestamp: bytes | None = None
        self.bad_commands = BadCommandBudget(ctx.config.limits.max_bad_commands)
        self.done = False

    @property
    def tls_active(self) -> bool:
        return self.writer.get_extra_info("ssl_object") is not None

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

    def has_buffered_input(self) -> bool:
        """Whether the client has sent bytes not yet read as commands."""
        # StreamReader has no public view of its buffer; what it holds was already received.
        buffered: bytes = getattr(self.reader, "_buffer", b"")
        return bool(buffered)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def bad_command(self, reply: bytes) -> None:
        """Answer a bad command; the session ends once the client has sent too many."""
        if self.bad_commands.spend():
            await self.send(replies.err("Too many bad commands, closing connection"))
            self.done = True
        else:
            await self.send(reply)

    async def read_line(self, limit: int) -> bytes | None:
        async with asyncio.timeout(self.ctx.config.limits.idle_timeout):
            return await read_line(self.reader, limit)

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
