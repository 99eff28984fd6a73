"""Readiness as systemd sees it: notifications from a real ``seikyou-auth serve`` child."""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path

import pytest
from opskit import NotifySocket, served
from support.serverkit import POP3S

from seikyou_auth.server import sdnotify


def test_notify_sends_one_datagram_to_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(receiver.path))
    try:
        assert sdnotify.notify("READY=1", "STATUS=up and running")
        assert receiver.next() == {"READY": "1", "STATUS": "up and running"}
    finally:
        receiver.close()


def test_notify_reaches_an_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"seikyou-auth-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name)
        receiver.settimeout(10)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        sdnotify.stopping()
        assert receiver.recv(4096) == b"STOPPING=1\nSTATUS=stopping"


def test_reloading_carries_the_monotonic_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(receiver.path))
    try:
        before = time.monotonic_ns() // 1000
        sdnotify.reloading()
        message = receiver.next()
        after = time.monotonic_ns() // 1000
    finally:
        receiver.close()
    assert message["RELOADING"] == "1"
    assert before <= int(message["MONOTONIC_USEC"]) <= after


def test_outside_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sdnotify.notify("READY=1")


def test_an_unreachable_socket_is_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    with caplog.at_level(logging.WARNING):
        assert not sdnotify.notify("READY=1")
    assert [record.getMessage() for record in caplog.records] == [
        f"cannot notify systemd at {tmp_path / 'nobody-listens'}: No such file or directory"
    ]


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_is_ready_reloads_and_stops_as_systemd_expects(tmp_path: Path, workers: int) -> None:
    """READY=1 only once the listeners accept; SIGHUP gives RELOADING=1 then READY=1."""
    with served(tmp_path, [POP3S, POP3S], {"workers": workers}) as server:
        # READY=1 has arrived: every listener of every worker must accept now.
        for port in server.ports:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        before = time.monotonic_ns() // 1000
        reloading = server.hangup()
        assert before <= int(reloading["MONOTONIC_USEC"])
        serving = "serving 2 listeners" if workers == 1 else "serving with 2 workers"
        assert reloading["STATUS"] == serving
        assert server.log().count("reloaded ") == workers
        # a second reload works the same way
        server.hangup()
    assert server.process.returncode == 0


def test_workers_reload_nothing_when_the_config_is_broken(tmp_path: Path) -> None:
    with served(tmp_path, [POP3S], {"workers": 2}) as server:
        server.config_path.write_text("this is [not toml\n")
        assert "the last reload failed" in server.hangup()["STATUS"]
        log = server.log()
        # the main process checked it: one line, and no worker was asked to reload
        assert log.count("reload failed, the running configuration is kept") == 1
        assert "reloaded " not in log
        socket.create_connection(("127.0.0.1", server.ports[0]), timeout=5).close()
