"""Queued mail for other domains reaches the smarthost; retries; nothing is lost."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from support.serverkit import SMTP_SUBMISSION, RunningServer, running_server
from support.smtp_wire import ACCOUNTS, ADDRESS, Wire


@dataclass
class Smarthost:
    """A tiny SMTP sink; ``mail_replies`` scripts the answer to each session's MAIL."""

    mail_replies: list[bytes]
    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    sessions: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        mail_reply = self.mail_replies.pop(0) if self.mail_replies else b"250 ok"
        sender, recipients = "", []
        writer.write(b"220 sink ESMTP\r\n")
        try:
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(b"250-sink\r\n250 8BITMIME\r\n")
                elif verb == b"MAIL":
                    sender = line.decode().split("<", 1)[1].split(">", 1)[0]
                    writer.write(mail_reply + b"\r\n")
                elif verb == b"RCPT":
                    address = line.decode().split("<", 1)[1].split(">", 1)[0]
                    recipients.append(address)
                    writer.write(b"250 ok\r\n" if "refuse" not in address else b"550 no\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go\r\n")
                    body = b""
                    while (chunk := await reader.readline()) != b".\r\n":
                        body += chunk
                    self.received.append(
                        (sender, [r for r in recipients if "refuse" not in r], body)
                    )
                    writer.write(b"250 stored\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    break
                else:
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        finally:
            writer.close()


@contextlib.contextmanager
def running_smarthost(mail_replies: list[bytes]) -> Iterator[Smarthost]:
    sink = Smarthost(list(mail_replies))
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, asyncio.Server] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(sink.handle, "127.0.0.1", 0))
        holder["server"] = server
        sink.port = server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield sink
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _submit(server: RunningServer, recipients: list[str]) -> None:
    with Wire(server.port("smtp")) as wire:
        wire.ehlo()
        wire.login()
        assert wire.command(f"MAIL FROM:<{ADDRESS}>")[0] == 250
        for recipient in recipients:
            assert wire.command(f"RCPT TO:<{recipient}>")[0] == 250
        wire.command("DATA")
        assert wire.command(b"Subject: out\r\n\r\n..dot first\r\n.")[0] == 250


def _wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_relay_retries_and_deletes_only_after_250(tmp_path: Path) -> None:
    with running_smarthost([b"451 4.3.0 try later", b"451 4.3.0 still busy"]) as sink:
        settings = {
            "smtp": {"relay_host": f"127.0.0.1:{sink.port}", "relay_retry_delays": [0.2, 0.4]}
        }
        with running_server(tmp_path, [SMTP_SUBMISSION], settings, ACCOUNTS) as server:
            queue = server.config.queue_dir / "new"
            started = time.monotonic()
            _submit(server, ["friend@example.com", "boss@example.org"])
            _wait_for(lambda: sink.received)
            took = time.monotonic() - started
            _wait_for(lambda: not list(queue.iterdir()))
    assert sink.sessions == 3
    assert took >= 0.6  # two deferrals: 0.2 s then 0.4 s
    ((sender, recipients, body),) = sink.received
    assert sender == ADDRESS
    assert recipients == ["friend@example.com", "boss@example.org"]
    assert body.startswith(b"Received: from client.example ([127.0.0.1])\r\n")
    assert b"with ESMTPA" in body
    assert body.endswith(b"Subject: out\r\n\r\n..dot first\r\n")  # stuffed again on the wire


def test_permanent_refusal_is_returned_to_sender_not_lost(tmp_path: Path) -> None:
    # The report itself is tested in tests/queue; here: the message leaves the retry loop.
    with running_smarthost([b"554 5.7.1 go away"]) as sink:
        settings = {"smtp": {"relay_host": f"127.0.0.1:{sink.port}"}}
        with running_server(tmp_path, [SMTP_SUBMISSION], settings, ACCOUNTS) as server:
            _submit(server, ["friend@example.com"])
            _wait_for(lambda: server.messages(ADDRESS.split("@")[0]))
            assert not list((server.config.queue_dir / "new").iterdir())
    assert sink.received == []


def test_unreadable_queue_file_is_set_aside(tmp_path: Path) -> None:
    with running_smarthost([]) as sink:
        settings = {"smtp": {"relay_host": f"127.0.0.1:{sink.port}"}}
        with running_server(tmp_path, [SMTP_SUBMISSION], settings, ACCOUNTS) as server:
            queue = server.config.queue_dir
            (queue / "new" / "garbage").write_bytes(b"\x00not json\n")
            _submit(server, ["friend@example.com"])  # wakes the relay task
            _wait_for(lambda: sink.received)
            _wait_for(lambda: (queue / "failed" / "garbage").exists())
            assert list((queue / "new").iterdir()) == []


def test_partly_refused_recipients(tmp_path: Path) -> None:
    with running_smarthost([]) as sink:
        settings = {"smtp": {"relay_host": f"127.0.0.1:{sink.port}"}}
        with running_server(tmp_path, [SMTP_SUBMISSION], settings, ACCOUNTS) as server:
            _submit(server, ["friend@example.com", "refuse@example.com"])
            _wait_for(lambda: sink.received)
            _wait_for(lambda: not list((server.config.queue_dir / "new").iterdir()))
    assert sink.received[0][1] == ["friend@example.com"]


def test_without_relay_host_mail_stays_queued(tmp_path: Path) -> None:
    with running_server(tmp_path, [SMTP_SUBMISSION], {}, ACCOUNTS) as server:
        _submit(server, ["friend@example.com"])
        time.sleep(0.2)
        (queued,) = list((server.config.queue_dir / "new").iterdir())
    assert b'"to": ["friend@example.com"]' in queued.read_bytes()
