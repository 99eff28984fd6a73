"""Issue 9 rows 2 and 11: what a message body can do to the server and to the next hop."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from attackkit import (
    MAIL_USER,
    PROBE_PASSWORD,
    PROBE_USER,
    RSS_GROWTH_BOUND_KB,
    ResourceWatch,
    assert_bounds,
    attack,
    hostile_server,
    source_address,
    under,
)
from support.serverkit import DOMAIN, free_port
from support.smtp_wire import Wire

# 8.7 M lines of "a": 26 MB, just under the default max_message_size of 26,214,400.
FLOOD_LINES = 8_700_000
FLOOD_CONNECTIONS = 5


def test_row2_huge_data_of_short_lines_is_streamed_not_buffered(tmp_path: Path) -> None:
    with hostile_server(tmp_path) as server:
        with (
            ResourceWatch(server) as watch,
            attack(
                "data_flood",
                port=server.ports["mx"],
                source=source_address(2, 0),
                recipient=f"{MAIL_USER}@{DOMAIN}",
                connections=FLOOD_CONNECTIONS,
                lines=FLOOD_LINES,
                seconds=180,
                settle=0,
            ) as flood,
        ):
            flood.wait_for_end(210)
        stored = server.maildir_messages(MAIL_USER)
        # Nothing lost: every 250 is a whole message on disk, body line for body line.
        intact = [path for path in stored if _body(path) == b"a\n" * FLOOD_LINES]
        assert_bounds(
            rss=under(watch.rss_growth_kb, RSS_GROWTH_BOUND_KB, "RSS growth kB"),
            accepted=None
            if flood.summary.get("end of data 250") == FLOOD_CONNECTIONS
            else f"not every message was accepted: {flood.summary}",
            stored=under(FLOOD_CONNECTIONS - len(intact), 1, "messages missing or cut"),
        )


def _body(path: Path) -> bytes:
    """The body of a stored message (Maildir files have LF line ends)."""
    return path.read_bytes().partition(b"\n\n")[2]


class _SinkHandler:
    """A smarthost that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@contextlib.contextmanager
def smarthost() -> Iterator[tuple[int, _SinkHandler]]:
    handler = _SinkHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


def _wait_until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


SMUGGLED = (
    b"MAIL FROM:<ceo@bank.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
    b"Subject: smuggled\r\n\r\nsmuggled body\r\n"
)


@pytest.mark.parametrize("false_end", [b"\r.\r\n", b"\n.\r\n", b"\r\n.\r", b"\n.\n"], ids=repr)
def test_row11_body_with_a_false_end_of_data_is_refused_not_relayed(
    tmp_path: Path, false_end: bytes
) -> None:
    with smarthost() as (sink_port, sink):
        smtp = {"relay_host": f"127.0.0.1:{sink_port}", "relay_retry_delays": [0.5]}
        with hostile_server(tmp_path, smtp=smtp) as server:
            client = Wire(
                server.ports["submissions"], implicit_tls=True, source=source_address(11, 0)
            )
            with client:
                client.ehlo()
                client.login(f"{PROBE_USER}@{DOMAIN}", PROBE_PASSWORD)
                sender = f"MAIL FROM:<{PROBE_USER}@{DOMAIN}>"
                # The control: a clean message does reach the sink, so its silence means something.
                for line, expected in ((sender, 250), ("RCPT TO:<friend@example.org>", 250)):
                    assert client.command(line)[0] == expected
                assert client.command("DATA")[0] == 354
                assert client.command(b"Subject: clean\r\n\r\nclean body\r\n.")[0] == 250
                assert _wait_until(lambda: len(sink.messages) == 1, 15), sink.messages

                for line in (sender, "RCPT TO:<friend@example.org>"):
                    assert client.command(line)[0] == 250
                assert client.command("DATA")[0] == 354
                body = b"Subject: innocent\r\n\r\nhello" + false_end + SMUGGLED
                code, text = client.command(body + b".")
                assert 500 <= code < 600, (code, text)
                code, text = client.command("QUIT")
                assert code == 221, (code, text)
            time.sleep(2)  # a relay pass would have delivered anything queued by now
            assert [message[2].count(b"smuggled") for message in sink.messages] == [0]
            assert server.queued() == []
