"""One SMTP connection's state and I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from seikyou_auth.accounts import Account
from seikyou_auth.sasl import CLEARTEXT_MECHANISMS
from seikyou_auth.server.connection import Connection
from seikyou_auth.server.context import ListenerContext
from seikyou_auth.server.policy import BadCommandBudget

__all__ = [
    "COMMAND_LINE_MAX",
    "MAX_RECIPIENTS",
    "TEXT_LINE_MAX",
    "Recipient",
    "Session",
    "Transaction",
]

COMMAND_LINE_MAX = 512  # RFC 5321 4.5.3.1.4, including CRLF
TEXT_LINE_MAX = 1000  # RFC 5321 4.5.3.1.6, including CRLF
MAX_RECIPIENTS = 100


@dataclass
class Recipient:
    address: str
    account: str | None  # the local account name, or None for another domain


@dataclass
class Transaction:
    sender: str
    eight_bit_declared: bool = False
    recipients: list[Recipient] = field(default_factory=list)


class Session:
    def __init__(self, conn: Connection, ctx: ListenerContext) -> None:
        self.ctx = ctx
        self.conn = conn
        self.lines = conn.lines
        self.last_reply = b""
        self.peer = conn.peer
        self.helo: str | None = None
        self.esmtp = False
        self.account: Account | None = None
        self.transaction: Transaction | None = None
        self.bad_commands = BadCommandBudget(ctx.config.limits.max_bad_commands)
        self.unknown_recipients = 0
        self.closing = False
        conn.session = self

    @property
    def logged_in(self) -> bool:
        return self.account is not None

    @property
    def tls_active(self) -> bool:
        return self.conn.tls_active

    @property
    def is_submission(self) -> bool:
        return self.ctx.listener.role == "submission"

    def reply(self, data: bytes) -> None:
        """Queue a reply; it is sent before the next wait for input (RFC 2920 batching)."""
        self.conn.reply(data)
        self.last_reply = data

    def flush(self) -> None:
        self.conn.flush()

    async def drain(self) -> None:
        await self.conn.drain()

    def close_after(self, data: bytes) -> None:
        self.reply(data)
        self.closing = True

    def reset_for_tls(self) -> None:
        """RFC 3207 4.2: after STARTTLS the client starts over with EHLO."""
        self.helo = None
        self.esmtp = False
        self.account = None
        self.transaction = None

    def cleartext_allowed(self) -> bool:
        return self.ctx.policy.cleartext_allowed(
            self.ctx.config.smtp.cleartext_auth, self.peer, self.tls_active
        )

    def offered_mechanisms(self) -> list[str]:
        """The AUTH mechanisms this connection may use now (none on MX)."""
        if not self.is_submission:
            return []
        cleartext_ok = self.cleartext_allowed()
        return [
            name
            for name in self.ctx.config.smtp.auth_mechanisms
            if cleartext_ok or name not in CLEARTEXT_MECHANISMS
        ]
