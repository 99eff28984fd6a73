"""The connection layer: admission at accept, eviction at the global cap, throttled logs.

The attacks themselves (floods, slowloris, slow readers) are in tests/hostile/; these
tests pin the layer's own rules, with fakes where a rule is pure bookkeeping and the real
server where it is about sockets.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from pathlib import Path

import pytest
from support.rawclient import RawClient
from support.serverkit import POP3S, SMTP_MX, SMTP_SUBMISSIONS, running_server

from seikyou_auth.server.connection import Admission, ThrottledLog


class FakeConnection:
    def __init__(self, peer: str, evictable: bool = True) -> None:
        self.peer = peer
        self.evictable = evictable
        self.evicted = False

    def evict(self) -> None:
        self.evicted = True


def test_per_address_cap_counts_only_that_address() -> None:
    admission = Admission(max_connections=100, per_address=2)
    first, second, third = (FakeConnection("192.0.2.1") for _ in range(3))
    assert admission.admit(first) and admission.admit(second)
    assert not admission.admit(third)
    assert admission.admit(FakeConnection("192.0.2.2"))
    admission.release(first)
    assert admission.admit(third)


def test_global_cap_evicts_an_idle_connection_of_the_largest_crowd() -> None:
    admission = Admission(max_connections=5, per_address=10)
    busy = FakeConnection("192.0.2.1", evictable=False)  # logged in, or inside DATA
    subscriber = FakeConnection("192.0.2.2")  # idle too, but alone at its address
    crowd = [
        FakeConnection("192.0.2.3", evictable=False),
        *(FakeConnection("192.0.2.3") for _ in range(2)),
    ]
    for conn in (busy, subscriber, *crowd):
        assert admission.admit(conn)
    newcomer = FakeConnection("192.0.2.4")
    assert admission.admit(newcomer)
    evicted = [conn.evicted for conn in (busy, subscriber, *crowd)]
    assert evicted == [False, False, False, True, False]  # the crowd's oldest idle one
    assert admission.open == 5
    idle_old = crowd[1]
    # The evicted session's own release afterwards changes nothing.
    admission.release(idle_old)
    assert admission.open == 5


def test_global_cap_refuses_when_nobody_can_make_room() -> None:
    admission = Admission(max_connections=2, per_address=10)
    for peer in ("192.0.2.1", "192.0.2.2"):
        assert admission.admit(FakeConnection(peer, evictable=False))
    assert not admission.admit(FakeConnection("192.0.2.3"))
    assert admission.open == 2


def test_throttled_log_says_once_per_interval_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="seikyou_auth.server")
    throttled = ThrottledLog("refused %s", interval=0.2)
    for _ in range(500):
        throttled.note("192.0.2.9")
    time.sleep(0.25)
    throttled.note("192.0.2.9")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "refused 192.0.2.9",
        "refused 192.0.2.9 (and 499 more since the last report)",
    ]


def _client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def test_implicit_tls_caps_apply_before_the_handshake(tmp_path: Path) -> None:
    settings = {
        "trusted_networks": ["127.0.0.1/32"],
        "limits": {"max_connections_per_address": 2, "tls_handshake_timeout": 2},
    }
    with running_server(tmp_path, [SMTP_SUBMISSIONS, POP3S], settings) as server:
        for port in (server.port("smtp", "submission"), server.port("pop3")):
            stalled = []
            for _ in range(2):  # half a ClientHello each: handshakes that never finish
                sock = socket.create_connection(
                    ("127.0.0.1", port), source_address=("127.0.0.7", 0)
                )
                sock.sendall(b"\x16\x03\x01")
                stalled.append(sock)
            extra = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.7", 0))
            extra.settimeout(5)
            assert extra.recv(100) == b""  # closed at once, no cleartext line, no handshake
            other = RawClient(port, "127.0.0.1", _client_context(), source="127.0.0.8")
            assert other.line()[:3] in (b"220", b"+OK")
            other.close()
            started = time.monotonic()
            for sock in stalled:
                sock.settimeout(5)
                assert sock.recv(100) == b""  # the handshake timeout ends them
                sock.close()
            assert time.monotonic() - started < 4.5
            extra.close()


def test_global_cap_evicts_the_oldest_idle_client_for_a_newcomer(tmp_path: Path) -> None:
    settings = {"trusted_networks": ["127.0.0.1/32"], "limits": {"max_connections": 3}}
    with running_server(tmp_path, [SMTP_MX], settings) as server:
        port = server.port("smtp", "mx")
        idle = []
        for number in range(3):
            client = RawClient(port, "127.0.0.1", source=f"127.0.0.{20 + number}")
            assert client.line().startswith(b"220 ")
            idle.append(client)
            time.sleep(0.05)  # so "oldest" is well defined
        newcomer = RawClient(port, "127.0.0.1", source="127.0.0.30")
        assert newcomer.line().startswith(b"220 ")
        assert idle[0].line() == b"421 4.7.0 Server busy: too many connections, try again later"
        assert idle[0].closed_by_server()
        # With one connection per address, the oldest idle one made room.
        newcomer.send(b"NOOP\r\n")
        assert newcomer.line() == b"250 2.0.0 Ok"
        for client in (*idle, newcomer):
            client.close()
