"""Support for the auth-protocol tests: the listener in a background loop, a raw client.

``running_auth_listener(tmp_path, accounts=...)`` starts the server's own auth
listener (``ServerApp(config).start()`` with one ``protocol = "auth"`` listener on a
UNIX socket) in a background loop and yields an ``AuthListener`` with its ``path``.
An error the listener logs, or an exception the loop reports, fails the test.
``AuthClient`` speaks the protocol byte for byte: it sends exactly what it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from support.serverkit import base_settings, write_config, write_passwd

from seikyou_auth.server.app import ServerApp
from seikyou_auth.server.config import Config, load_config

CLIENT_HANDSHAKE = b"VERSION\t1\t2\nCPID\t4242\n"


class _ErrorRecords(logging.Handler):
    """Errors the listener logs (a bug of ours caught per connection) end up as crashes."""

    def __init__(self, crashes: list[object]) -> None:
        super().__init__(logging.ERROR)
        self.crashes = crashes

    def emit(self, record: logging.LogRecord) -> None:
        self.crashes.append(record.getMessage())


@dataclass
class AuthListener:
    path: Path
    config: Config
    app: ServerApp
    loop: asyncio.AbstractEventLoop
    crashes: list[object] = field(default_factory=list)

    def client(self, handshake: bytes | None = CLIENT_HANDSHAKE) -> AuthClient:
        """A connected client that has read the server handshake and sent ``handshake``."""
        client = AuthClient(self.path)
        client.read_handshake()
        if handshake is not None:
            client.send(handshake)
        return client


@contextlib.contextmanager
def running_auth_listener(
    tmp_path: Path,
    *,
    accounts: Mapping[str, str] | None = None,
    scheme: str = "PLAIN",
    settings: Mapping[str, Any] | None = None,
    mode: str = "0600",
    socket_dir: Path | None = None,
) -> Iterator[AuthListener]:
    # sun_path holds 108 bytes, less than pytest's tmp_path can be.
    own_dir = socket_dir is None
    directory = Path(tempfile.mkdtemp(prefix="sa-auth-", dir="/tmp")) if own_dir else socket_dir
    assert directory is not None
    path = directory / "auth"
    merged = base_settings(tmp_path, [], settings)
    merged["listener"] = [{"protocol": "auth", "path": str(path), "mode": mode}]
    if accounts is not None:
        write_passwd(Path(merged["passwd_file"]), accounts, scheme)
    config = load_config(str(write_config(tmp_path / "seikyou.toml", merged)))
    loop = asyncio.new_event_loop()
    app = ServerApp(config, primary=True)
    listener = AuthListener(path, config, app, loop)
    loop.set_exception_handler(lambda _loop, context: listener.crashes.append(context))
    errors = _ErrorRecords(listener.crashes)
    auth_log = logging.getLogger("seikyou_auth.server.dovecot_auth")
    auth_log.addHandler(errors)
    loop.run_until_complete(app.start())
    thread = threading.Thread(target=loop.run_forever, name="auth-listener", daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        asyncio.run_coroutine_threadsafe(app.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        auth_log.removeHandler(errors)
        if own_dir:
            shutil.rmtree(directory, ignore_errors=True)
    assert not listener.crashes, listener.crashes


class AuthClient:
    """Raw lines over the auth socket; replies end in LF alone, as Dovecot's do."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buffer = b""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def raw_line(self) -> bytes:
        """The next line with its LF."""
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; pending {self.buffer!r}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def line(self) -> str:
        return self.raw_line()[:-1].decode()

    def read_handshake(self) -> bytes:
        """Everything up to and including ``DONE``."""
        received = b""
        while not received.endswith(b"DONE\n"):
            received += self.raw_line()
        return received

    def closed_by_server(self) -> bool:
        """True when the server hangs up with nothing more to say."""
        try:
            chunk = self.buffer or self.sock.recv(65536)
        except ConnectionResetError:
            return True
        return chunk == b""

    def timed_line(self) -> tuple[str, float]:
        started = time.monotonic()
        line = self.line()
        return line, time.monotonic() - started
