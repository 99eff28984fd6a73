"""Shared pieces of the aiosmtpd integration tests: accounts, TLS files, a recording handler."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seikyou_auth.integrations.aiosmtpd import SeikyouAuthController
from seikyou_auth.server.policy import FailureDelay, Policy

DOMAIN = "seikyou.ne.jp"
SERVER_NAME = "mail.seikyou.test"

# account -> password; the stored scheme of each decides which mechanisms can work
PLAIN_USER, PLAIN_PASSWORD = "ma10001a", "kaeru-pyon"
CRAM_USER, CRAM_PASSWORD = "ma10002b", "kame-nonbiri"
CRYPT_USER, CRYPT_PASSWORD = "ma10003c", "usagi-dash"

StartController = Callable[..., SeikyouAuthController]


@dataclass
class Delivered:
    account: str | None
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class RecordingHandler:
    """An aiosmtpd handler that keeps each message with the account that sent it."""

    messages: list[Delivered] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        account = session.auth_data.account.name if session.auth_data is not None else None
        self.messages.append(
            Delivered(account, envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        )
        return "250 2.0.0 Queued"


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Verifies the server certificate for real (its SAN holds 127.0.0.1)."""
        return ssl.create_default_context(cafile=str(self.cert))


def passwd_line(name: str, stored: str) -> str:
    return f"{name}:{stored}::::::\n"


def no_delay() -> FailureDelay:
    return FailureDelay((0.0,), Policy(()))
