"""A real ``redis-server`` (Debian's package) for tests, on a free loopback port.

``redis_server(tmp_path)`` is a context manager yielding a ``RedisServer``: started in its
own temporary directory with persistence off (no RDB, no AOF), stopped by its PID when the
block ends. ``stop()``/``start()`` (same port) and ``kill()`` (SIGKILL) are there for fault
tests. A missing ``redis-server`` follows ``support/tools.py``'s rule: skipped with the
package to install, a failure under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from support.child import end_child
from support.serverkit import free_port
from support.tools import require_tool

__all__ = ["RedisServer", "redis_server"]

START_TIMEOUT = 10.0


class RedisServer:
    """One ``redis-server`` process; ``url`` for clients."""

    def __init__(self, executable: str, directory: Path, port: int) -> None:
        self.executable = executable
        self.directory = directory
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def start(self) -> None:
        if self.process is not None:
            raise RuntimeError("redis-server is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        # The config goes on stdin ("-"), so no option can be mistaken for a file name.
        settings = "\n".join(
            [
                f"port {self.port}",
                "bind 127.0.0.1",
                f"dir {self.directory}",
                'save ""',
                "appendonly no",
                "daemonize no",
                f"logfile {self.log_path}",
            ]
        )
        self.process = subprocess.Popen(
            [self.executable, "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(settings.encode() + b"\n")
        self.process.stdin.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            if self.ping():
                return
            time.sleep(0.05)
        log = self.log_path.read_text() if self.log_path.exists() else ""
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING on port {self.port}: {log[-500:]}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as client:
                client.sendall(b"PING\r\n")
                return client.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM to our process (by PID) and wait for it; a no-op when not running."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        self._end(signal.SIGKILL)

    def _end(self, signum: int) -> None:
        process, self.process = self.process, None
        if process is not None:
            end_child(process, signum)


@contextlib.contextmanager
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(require_tool("redis-server"), tmp_path / "redis", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
