"""Issue 9 rows 6 and 7: time. A trickle cannot hold a slot; a slow reader or a slow login is
not an idle client."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from attackers import SERVER_ADDRESS, client_tls_context, trickle
from attackkit import (
    MAIL_PASSWORD,
    MAIL_USER,
    PROBE_PASSWORD,
    PROBE_USER,
    hostile_server,
    source_address,
)
from support.serverkit import DOMAIN
from support.smtp_wire import Wire, plain_ir

from seikyou_auth.storage.maildir_writer import MaildirStore

IDLE_TIMEOUT = 3.0
# Closed within the idle timeout plus this: the watchdog's own granularity and a busy machine.
CLOSE_SLACK = 4.0
OBSERVE = 15.0  # a connection still open after this was never going to be closed


def test_row6_slowloris_is_cut_off_in_every_state(tmp_path: Path) -> None:
    with hostile_server(tmp_path, limits={"idle_timeout": IDLE_TIMEOUT}) as server:
        mx, pop3 = server.ports["mx"], server.ports["pop3"]
        mail = [
            "EHLO slow.example",
            "MAIL FROM:<slow@example.org>",
            f"RCPT TO:<{MAIL_USER}@{DOMAIN}>",
            "DATA",
        ]
        # (what the client does, port, setup commands, what it trickles, octets per drip,
        # seconds between drips, SMTP?)
        cases = [
            ("SMTP command", mx, ["EHLO slow.example"], b"NOOP\r\n", 1, 1.0, True),
            ("SMTP DATA", mx, mail, b"Subject: slow\r\n\r\nslow body\r\n", 1, 1.0, True),
            ("POP3", pop3, [], b"NOOP\r\n", 1, 1.0, False),
            # A line that never ends, 5,000 octets/s: over any line limit within a second.
            ("SMTP over-long line", mx, ["EHLO slow.example"], b"x", 1000, 0.2, True),
            ("POP3 over-long line", pop3, [], b"x", 1000, 0.2, False),
        ]

        async def run_all() -> list[float | None]:
            return await asyncio.gather(
                *(
                    trickle(
                        port,
                        source_address(6, index),
                        setup=setup,
                        drip=drip,
                        octets=octets,
                        interval=interval,
                        observe=OBSERVE,
                        smtp=smtp,
                    )
                    for index, (_, port, setup, drip, octets, interval, smtp) in enumerate(cases)
                )
            )

        held = asyncio.run(run_all())
        outcomes = {case[0]: seconds for case, seconds in zip(cases, held, strict=True)}
        late = {
            name: seconds
            for name, seconds in outcomes.items()
            if seconds is None or seconds > IDLE_TIMEOUT + CLOSE_SLACK
        }
        assert not late, f"still open (None) or closed late, in seconds: {outcomes}"
        assert server.maildir_messages(MAIL_USER) == []


RETR_SIZE = 3 * 1024 * 1024
RETR_SECONDS = 8.0


def _slow_pop3_retrieval(port: int, source: str) -> tuple[bytes, list[bytes]]:
    """RETR 1 read at ~RETR_SIZE / RETR_SECONDS octets/s, then DELE 1 and QUIT."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window, so the server really is blocked sending while the client reads.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.bind((source, 0))
    sock.settimeout(20)
    sock.connect((SERVER_ADDRESS, port))
    conn = client_tls_context().wrap_socket(sock)
    with conn:
        stream = conn.makefile("rb")
        replies = [stream.readline()]
        for command in (f"USER {MAIL_USER}", f"PASS {MAIL_PASSWORD}", "RETR 1"):
            conn.sendall(command.encode() + b"\r\n")
            replies.append(stream.readline())
        received = bytearray()
        start = time.monotonic()
        while not received.endswith(b"\r\n.\r\n"):
            chunk = stream.read1(16384)
            if not chunk:
                break
            received += chunk
            ahead = len(received) * RETR_SECONDS / RETR_SIZE - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
        for command in ("DELE 1", "QUIT"):
            conn.sendall(command.encode() + b"\r\n")
            replies.append(stream.readline())
        stream.close()
    return bytes(received), replies


def test_row7_slow_reader_of_a_big_message_is_not_idle(tmp_path: Path) -> None:
    with hostile_server(tmp_path, limits={"idle_timeout": 2.0}) as server:
        line = b"0123456789" * 7 + b"\n"
        body = line * (RETR_SIZE // len(line))
        MaildirStore(server.data_dir / "mail", "test.example").deliver(
            MAIL_USER, b"Subject: big\n\n" + body
        )
        start = time.monotonic()
        received, replies = _slow_pop3_retrieval(server.ports["pop3s"], source_address(7, 0))
        took = time.monotonic() - start
        assert took > RETR_SECONDS - 1, took  # the client really was slow
        assert all(reply.startswith(b"+OK") for reply in replies), replies
        assert received.replace(b"\r\n", b"\n").endswith(body + b".\n")
        assert server.maildir_messages(MAIL_USER) == []  # DELE took effect at QUIT


def test_row7_login_waiting_on_the_server_is_not_idle(tmp_path: Path) -> None:
    # The failed AUTH is answered after a 3 s penalty, longer than the 2 s idle timeout: that
    # time is the server's, so a client that retries half a second after the 535 is not idle.
    limits = {"idle_timeout": 2.0, "failure_delays": [3.0]}
    with hostile_server(tmp_path, limits=limits) as server:
        with Wire(
            server.ports["submissions"], implicit_tls=True, source=source_address(7, 1)
        ) as client:
            client.ehlo()
            user = f"{PROBE_USER}@{DOMAIN}"
            code, text = client.command(f"AUTH PLAIN {plain_ir(user, 'wrong')}")
            assert code == 535, (code, text)
            time.sleep(0.5)
            code, text = client.command(f"AUTH PLAIN {plain_ir(user, PROBE_PASSWORD)}")
            assert code == 235, (code, text)
            assert client.command("QUIT")[0] == 221
