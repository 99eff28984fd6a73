"""The POP3 tests' server: serverkit's real ServerApp with POP3 inside and outside the ISP.

Listeners: POP3 with STLS and POP3S on 127.0.0.1 (in ``trusted_networks``) and on
127.0.0.2 (outside them), and, for the end-to-end tests, SMTP submission on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import poplib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from support.serverkit import POP3, POP3S, SMTP_SUBMISSION, RunningServer, running_server

import seikyou_auth
from seikyou_auth.server.config import Config
from seikyou_auth.storage.maildir_writer import MaildirStore

APOP_USER = "ma10001a"
APOP_PASSWORD = "pass word with spaces"
CRYPT_USER = "ma10002b"
CRYPT_PASSWORD = "crypt-secret"
SPARE_USERS = [f"ma2000{index}x" for index in range(10)]
SPARE_PASSWORD = "spare-secret"
INSIDE = "127.0.0.1"
OUTSIDE = "127.0.0.2"
FAILURE_DELAY = 0.3


class OutsidePOP3(poplib.POP3):
    """poplib connecting from 127.0.0.2, an address outside ``trusted_networks``."""

    def _create_socket(self, timeout: float) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout, (OUTSIDE, 0))


class OutsidePOP3_SSL(poplib.POP3_SSL):
    def _create_socket(self, timeout: float) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout, (OUTSIDE, 0))
        return self.context.wrap_socket(sock, server_hostname=self.host)


@dataclass
class Pop3Server:
    running: RunningServer
    spares_used: int = 0

    def spare_user(self) -> str:
        """An account with an empty mailbox that no other test of this server has used."""
        user = SPARE_USERS[self.spares_used]
        self.spares_used += 1
        return user

    @property
    def config(self) -> Config:
        return self.running.config

    def port(self, protocol: str = "pop3", tls: str = "starttls", address: str = INSIDE) -> int:
        for entry in self.running.bound:
            listener = entry.listener
            if (listener.protocol, listener.tls, listener.address) == (protocol, tls, address):
                return entry.port
        raise LookupError(f"no {protocol} {tls} listener on {address}")

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.config.tls_cert))
        # The generated certificate names 127.0.0.1 and localhost, not 127.0.0.2.
        context.check_hostname = False
        return context

    def deliver(self, user: str, content: bytes) -> Path:
        return MaildirStore(self.config.mail_dir, "mx.test").deliver(user, content)

    def maildir(self, user: str) -> Path:
        return self.running.maildir(user)


def write_accounts(path: Path) -> None:
    """PLAIN accounts (APOP and CRAM-MD5 can use them) and one SHA512-CRYPT account."""
    crypt = seikyou_auth.hash_password(CRYPT_PASSWORD.encode(), "SHA512-CRYPT")
    lines = [
        f"{APOP_USER}:{{PLAIN}}{APOP_PASSWORD}::::::",
        f"{CRYPT_USER}:{crypt}::::::",
        *(f"{name}:{{PLAIN}}{SPARE_PASSWORD}::::::" for name in SPARE_USERS),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def pop3_server(
    directory: Path, idle_timeout: float = 30.0, submission: bool = False
) -> Iterator[Pop3Server]:
    listeners = [
        POP3,
        POP3S,
        {**POP3, "address": OUTSIDE},
        {**POP3S, "address": OUTSIDE},
    ]
    if submission:
        listeners.append(SMTP_SUBMISSION)
    settings = {
        "hostname": "pop.test.example",
        "trusted_networks": [f"{INSIDE}/32", "::1/128"],
        "limits": {
            "idle_timeout": idle_timeout,
            "max_bad_commands": 8,
            "failure_delays": [FAILURE_DELAY],
        },
    }
    write_accounts(directory / "data" / "passwd")
    with running_server(directory, listeners, settings) as running:
        yield Pop3Server(running)
