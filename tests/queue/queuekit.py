"""A real SMTP smarthost for the queue tests (aiosmtpd on a loopback port), and helpers
to submit mail, run ``seikyou-auth queue ...`` and wait for files."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import smtplib
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from support.serverkit import DOMAIN, SMTP_SUBMISSION, RunningServer, free_port, running_server

LOCAL_ACCOUNT = "ma10001a"
PASSWORD = "kaeru-pyon"
LOCAL_SENDER = f"{LOCAL_ACCOUNT}@{DOMAIN}"
ACCOUNTS = {LOCAL_ACCOUNT: PASSWORD}
REMOTE = "friend@example.com"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    content: bytes


@dataclass
class SinkHandler:
    """Answers RCPT with ``rcpt_reply`` (or 250; always 250 to a "pass" address, and the
    reply of ``rcpt_replies`` to an address starting with one of its keys), and records
    what DATA brings."""

    rcpt_reply: str | None = None
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    sessions: int = 0
    # Set when a DATA arrives; the answer then waits ``data_delay`` seconds.
    in_data: threading.Event = field(default_factory=threading.Event)
    data_delay: float = 0.0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        for prefix, reply in self.rcpt_replies.items():
            if address.startswith(prefix):
                return reply
        if self.rcpt_reply is not None and "pass" not in address:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.sessions += 1
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        self.in_data.set()
        await asyncio.sleep(self.data_delay)
        return "250 2.0.0 Ok: queued"


@contextlib.contextmanager
def smarthost(rcpt_reply: str | None = None) -> Iterator[tuple[SinkHandler, int]]:
    handler = SinkHandler(rcpt_reply)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def relay_settings(port: int | None, **queue: float) -> dict[str, Any]:
    smtp: dict[str, Any] = {"relay_retry_delays": [0.2, 0.4]}
    if port is not None:
        smtp["relay_host"] = f"127.0.0.1:{port}"
    settings: dict[str, Any] = {"smtp": smtp}
    if queue:
        settings["queue"] = dict(queue)
    return settings


@contextlib.contextmanager
def queue_server(tmp_path: Path, settings: dict[str, Any]) -> Iterator[RunningServer]:
    with running_server(tmp_path, [SMTP_SUBMISSION], settings, ACCOUNTS) as server:
        yield server


def submit(server: RunningServer, recipients: list[str], subject: str = "out") -> None:
    submit_to(server.port("smtp"), server.config.tls_cert, recipients, subject)


def submit_to(port: int, cert: Path, recipients: list[str], subject: str = "out") -> None:
    """Submission with STARTTLS (trusting the server's generated certificate) and PLAIN."""
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    message = f"From: <{LOCAL_SENDER}>\r\nSubject: {subject}\r\n\r\nhello\r\n"
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.starttls(context=context)
        client.login(LOCAL_SENDER, PASSWORD)
        assert client.sendmail(LOCAL_SENDER, recipients, message) == {}


def wait_for(condition: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def queued(server: RunningServer) -> list[Path]:
    new = server.config.queue_dir / "new"
    return sorted(new.iterdir()) if new.is_dir() else []


def parse(message: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def delivery_status(report: EmailMessage) -> list[dict[str, str]]:
    """The per-message block, then one block per recipient, of a DSN's second part."""
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    parts = list(report.iter_parts())
    assert [part.get_content_type() for part in parts] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    blocks = parts[1].get_payload()
    assert isinstance(blocks, list)
    return [{key: str(value) for key, value in block.items()} for block in blocks]


def cli(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seikyou_auth", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )
