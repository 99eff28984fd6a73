"""A real ``seikyou-auth serve`` child for the operator-side tests, watched like systemd does.

- ``NotifySocket``: a datagram socket standing in for systemd's ``$NOTIFY_SOCKET``;
  ``next()`` returns one notification as a dict (``{"READY": "1", "STATUS": ...}``).
- ``served(tmp_path, listeners, settings, accounts)``: the server on fixed free loopback
  ports, started with that socket, yielded once it said ``READY=1``; ``hangup()`` sends
  SIGHUP and waits for the ``RELOADING=1`` / ``READY=1`` pair; on exit it gets SIGTERM
  and must say ``STOPPING=1`` and exit 0.
- ``pop3_login(port, ...)``: a logged-in POP3S session over ``RawClient``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import ssl
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.rawclient import RawClient
from support.serverkit import (
    base_settings,
    free_ports,
    serve_subprocess,
    write_config,
    write_passwd,
)

NOTIFY_TIMEOUT = 30.0


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def fingerprint(der: bytes | None) -> str:
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def certificate_fingerprint(port: int) -> str:
    """SHA-256 of the certificate a new implicit-TLS connection to ``port`` is shown."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with client_context().wrap_socket(sock) as tls:
            return fingerprint(tls.getpeercert(binary_form=True))


def pem_fingerprint(path: Path) -> str:
    return fingerprint(ssl.PEM_cert_to_DER_cert(path.read_text()))


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(NOTIFY_TIMEOUT)

    def next(self) -> dict[str, str]:
        message = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in message.split("\n"))

    def close(self) -> None:
        self.sock.close()


@dataclass
class Served:
    process: subprocess.Popen[str]
    notify: NotifySocket
    config_path: Path
    settings: dict[str, Any]
    ports: list[int]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    def rewrite_config(self, settings: Mapping[str, Any]) -> None:
        write_config(self.config_path, settings)

    def hangup(self) -> dict[str, str]:
        """SIGHUP; the RELOADING=1 notification (checked and returned with the READY=1 one's
        fields, whose STATUS replaces "reloading")."""
        os.kill(self.process.pid, signal.SIGHUP)
        reloading = self.notify.next()
        assert reloading.get("RELOADING") == "1", reloading
        ready = self.notify.next()
        assert ready.get("READY") == "1", ready
        return {**reloading, **ready}


@contextlib.contextmanager
def served(
    tmp_path: Path,
    listeners: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any] | None = None,
    accounts: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Served]:
    ports = free_ports(len(listeners))
    fixed = [{**listener, "port": port} for listener, port in zip(listeners, ports, strict=True)]
    merged = base_settings(tmp_path, fixed, settings)
    if accounts is not None:
        write_passwd(Path(merged["passwd_file"]), accounts)
    config_path = write_config(tmp_path / "seikyou.toml", merged)
    notify = NotifySocket(tmp_path / "notify.sock")
    environment = {**(env or {}), "NOTIFY_SOCKET": str(notify.path)}
    try:
        with serve_subprocess(tmp_path, config_path, len(listeners), env=environment) as process:
            running = Served(process, notify, config_path, merged, ports, tmp_path / "serve.log")
            ready = notify.next()
            assert ready.get("READY") == "1", ready
            yield running
            os.kill(process.pid, signal.SIGTERM)
            assert notify.next().get("STOPPING") == "1"
            assert process.wait(30) == 0, running.log()
    finally:
        notify.close()


def pop3_login(
    port: int, name: str, password: str, source: str = "127.0.0.1"
) -> tuple[RawClient, list[bytes]]:
    """A POP3S session after USER/PASS; the server's replies to both."""
    client = RawClient(port, context=client_context(), source=source)
    assert client.line().startswith(b"+OK")
    client.send(f"USER {name}\r\n")
    first = client.line()
    client.send(f"PASS {password}\r\n")
    return client, [first, client.line()]
