"""A real PostgreSQL (Debian's package) for tests, on a free loopback port.

PostgreSQL refuses to run as root, and the tests run as root: the cluster is made by ``initdb``
and run by ``postgres`` as the ``postgres`` system user (``setpriv``, which execs, so the PID
we hold is the postmaster's), in a temporary directory under ``/tmp`` owned by that user
(pytest's own ``tmp_path`` is mode 0700 to root). The server listens on 127.0.0.1 only, its
UNIX socket in the same directory; the superuser is ``seikyou``, trusted on loopback.

- ``postgresql_server()``: a context manager yielding a running ``PostgresqlServer``, stopped
  by its PID and removed at the end. ``stop()``/``start()`` (same port, same data) and
  ``kill()`` are there for fault tests.
- ``postgresql_session`` (session fixture) and ``postgresql_dsn`` (a fresh database on it for
  each test): import both into a ``conftest.py``.

When the binaries are missing the test is skipped with the reason, except under ``CI=true``,
where it is a failure: CI must run these tests.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.child import end_child
from support.tools import require_tool

__all__ = [
    "PostgresqlServer",
    "postgresql_dsn",
    "postgresql_server",
    "postgresql_session",
    "require_postgresql",
]

SYSTEM_USER = "postgres"
SUPERUSER = "seikyou"
START_TIMEOUT = 30.0


def require_postgresql() -> Path:
    """The directory of ``initdb``, ``postgres`` and ``psql`` (Debian keeps them in a versioned
    directory); skips the test when they are missing, fails it under ``CI=true``."""
    return Path(require_tool("initdb")).resolve().parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_postgres() -> list[str]:
    """A command prefix running as the ``postgres`` system user (nothing when not root)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={SYSTEM_USER}", f"--regid={SYSTEM_USER}", "--clear-groups", "--"]


class PostgresqlServer:
    """One PostgreSQL cluster in ``directory``; ``dsn(database)`` for clients."""

    def __init__(self, bin_dir: Path, directory: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.directory = directory
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self._databases = itertools.count(1)

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / "postgresql.log"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def initdb(self) -> None:
        subprocess.run(
            [
                *_as_postgres(),
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",  # the cluster lives for one test run
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=120,
        )

    def start(self) -> None:
        if self.process is not None:
            raise RuntimeError("PostgreSQL is already running")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *_as_postgres(),
                    str(self.bin_dir / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-p",
                    str(self.port),
                    "-h",
                    "127.0.0.1",
                    "-k",
                    str(self.directory),
                    "-c",
                    "max_connections=200",
                ],
                stdout=log,
                stderr=log,
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            if self.psql("SELECT 1", check=False).returncode == 0:
                return
            time.sleep(0.1)
        log = self.log_path.read_text(errors="replace")
        self.stop()
        raise RuntimeError(f"PostgreSQL did not start on port {self.port}: {log[-800:]}")

    def psql(
        self, sql: str, database: str = "postgres", *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``sql`` with ``psql`` over TCP; stdout is the unaligned result."""
        return subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "--no-psqlrc",
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.dsn(database),
                "-c",
                sql,
            ],
            check=check,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def create_database(self) -> str:
        """A new empty database; its DSN."""
        name = f"test_{next(self._databases)}"
        self.psql(f"CREATE DATABASE {name}")
        return self.dsn(name)

    def stop(self) -> None:
        """Fast shutdown (SIGINT to our postmaster, by PID) and wait; a no-op when stopped."""
        self._end(signal.SIGINT)

    def kill(self) -> None:
        """SIGKILL: a crash (the next start recovers from the WAL)."""
        self._end(signal.SIGKILL)

    def _end(self, signum: int) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        end_child(process, signum)
        if signum == signal.SIGKILL:
            # The backends of a killed postmaster exit once they notice; a restart on the same
            # data directory waits for them (its lock file names the old postmaster).
            time.sleep(0.5)


@contextlib.contextmanager
def postgresql_server() -> Iterator[PostgresqlServer]:
    bin_dir = require_postgresql()
    directory = Path(tempfile.mkdtemp(prefix="seikyou-pg-"))
    try:
        if os.geteuid() == 0:
            user = pwd.getpwnam(SYSTEM_USER)
            os.chown(directory, user.pw_uid, user.pw_gid)
        server = PostgresqlServer(bin_dir, directory, _free_port())
        server.initdb()
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgresql_session() -> Iterator[PostgresqlServer]:
    """One PostgreSQL for the session; tests that stop it make their own."""
    with postgresql_server() as server:
        yield server


@pytest.fixture
def postgresql_dsn(postgresql_session: PostgresqlServer) -> str:
    """A fresh, empty database on the session's PostgreSQL."""
    return postgresql_session.create_database()
