"""Protocol-neutral helpers to run the real server in tests.

- ``write_passwd(path, {"name": "password"}, scheme="PLAIN")``: a Dovecot passwd-file.
- ``write_config(path, settings)``: a TOML config file from a dict (tables and
  ``listener`` arrays of tables included).
- ``running_server(tmp_path, listeners=[...], settings={...}, accounts={...})``: a
  context manager that starts ``ServerApp`` on ephemeral ports in a background
  thread with its own event loop, yields a ``RunningServer`` (``.port("smtp",
  "submission", "starttls")``, ``.data_dir``, ``.maildir("name")``), and stops it.
- ``serve_subprocess(...)``: ``seikyou-auth serve`` as a child process, waiting
  for its listener banner.

Listeners are dicts as in the config file; ``port`` defaults to 0 (ephemeral)
and ``address`` to 127.0.0.1. Failure delays default to a few milliseconds so
tests stay fast; pass ``settings={"limits": {...}}`` to change them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import seikyou_auth
from seikyou_auth.server.app import BoundListener, ServerApp
from seikyou_auth.server.config import Config, load_config

SMTP_SUBMISSION = {"protocol": "smtp", "role": "submission", "tls": "starttls"}
SMTP_SUBMISSIONS = {"protocol": "smtp", "role": "submission", "tls": "implicit"}
SMTP_MX = {"protocol": "smtp", "role": "mx", "tls": "starttls"}
POP3 = {"protocol": "pop3", "tls": "starttls"}
POP3S = {"protocol": "pop3", "tls": "implicit"}

DOMAIN = "seikyou.ne.jp"
HOSTNAME = "mail.test.seikyou.ne.jp"
FAST_LIMITS = {"failure_delays": [0.01, 0.02, 0.04, 0.08], "shutdown_grace": 2.0}


def write_passwd(path: Path, accounts: Mapping[str, str], scheme: str = "PLAIN") -> None:
    """``name:{SCHEME}...`` lines; the stored value is built with seikyou_auth.hash_password."""
    lines = []
    for name, password in accounts.items():
        stored = seikyou_auth.hash_password(password.encode(), scheme)
        lines.append(f"{name}:{stored}:1000:1000::/home/{name}::\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def toml_text(settings: Mapping[str, Any]) -> str:
    """TOML for a dict of scalars, tables (dicts) and ``listener`` (list of dicts)."""
    out = [f"{key} = {_toml_value(value)}" for key, value in settings.items() if _scalar(value)]
    for key, value in settings.items():
        if isinstance(value, Mapping):
            out.append(f"\n[{key}]")
            out.extend(f"{k} = {_toml_value(v)}" for k, v in value.items())
    for key, value in settings.items():
        if isinstance(value, list) and value and isinstance(value[0], Mapping):
            for entry in value:
                out.append(f"\n[[{key}]]")
                out.extend(f"{k} = {_toml_value(v)}" for k, v in entry.items())
    return "\n".join(out) + "\n"


def _scalar(value: Any) -> bool:
    if isinstance(value, Mapping):
        return False
    return not (isinstance(value, list) and value and isinstance(value[0], Mapping))


def write_config(path: Path, settings: Mapping[str, Any]) -> Path:
    path.write_text(toml_text(settings))
    return path


def base_settings(
    tmp_path: Path,
    listeners: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    data_dir = tmp_path / "data"
    merged: dict[str, Any] = {
        "hostname": HOSTNAME,
        "domain": DOMAIN,
        "data_dir": str(data_dir),
        "passwd_file": str(data_dir / "passwd"),
        "tls_cert": str(data_dir / "tls" / "cert.pem"),
        "tls_key": str(data_dir / "tls" / "key.pem"),
        "limits": dict(FAST_LIMITS),
    }
    for key, value in (settings or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    merged["listener"] = [{"address": "127.0.0.1", "port": 0, **entry} for entry in listeners]
    return merged


@dataclass
class RunningServer:
    app: ServerApp
    config: Config
    bound: list[BoundListener]
    loop: asyncio.AbstractEventLoop

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    def listener(
        self, protocol: str, role: str | None = None, tls: str | None = None
    ) -> BoundListener:
        for entry in self.bound:
            config = entry.listener
            if config.protocol != protocol:
                continue
            if role is not None and config.role != role:
                continue
            if tls is not None and config.tls != tls:
                continue
            return entry
        raise LookupError(f"no {protocol}/{role}/{tls} listener")

    def port(self, protocol: str, role: str | None = None, tls: str | None = None) -> int:
        return self.listener(protocol, role, tls).port

    def maildir(self, name: str) -> Path:
        return self.config.mail_dir / name

    def messages(self, name: str) -> list[bytes]:
        """The files in the account's ``new/``, oldest name first."""
        new = self.maildir(name) / "new"
        if not new.is_dir():
            return []
        return [path.read_bytes() for path in sorted(new.iterdir())]

    def call(self, coroutine: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the server's loop from the test thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


@contextlib.contextmanager
def running_server(
    tmp_path: Path,
    listeners: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any] | None = None,
    accounts: Mapping[str, str] | None = None,
    scheme: str = "PLAIN",
) -> Iterator[RunningServer]:
    """Start the server in a background thread; stop it (cleanly) when the block ends."""
    merged = base_settings(tmp_path, listeners, settings)
    if accounts is not None:
        write_passwd(Path(merged["passwd_file"]), accounts, scheme)
    config = load_config(str(write_config(tmp_path / "seikyou.toml", merged)))
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict[str, Any] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            app = ServerApp(config)
            state["app"] = app
            state["bound"] = loop.run_until_complete(app.start())
        except BaseException as error:
            state["error"] = error
            started.set()
            _close_loop(loop)
            return
        started.set()
        loop.run_forever()
        _close_loop(loop)

    thread = threading.Thread(target=serve, name="seikyou-test-server", daemon=True)
    thread.start()
    started.wait(30)
    if "error" in state:
        thread.join(10)
        raise state["error"]
    server = RunningServer(state["app"], config, state["bound"], loop)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.app.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(60)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


def port_is_free(port: int, address: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def free_ports(count: int, address: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports: every probe stays bound until all are chosen.

    Asking the kernel one port at a time can hand back the port it just gave (it was
    closed again), so two listeners of one server would collide.
    """
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            probe = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind((address, 0))
            ports.append(probe.getsockname()[1])
    return ports


def free_port(address: str = "127.0.0.1") -> int:
    return free_ports(1, address)[0]


def serve_command(config_path: Path | None) -> list[str]:
    """``seikyou-auth serve`` through the installed CLI module."""
    command = [sys.executable, "-m", "seikyou_auth", "serve"]
    if config_path is not None:
        command += ["--config", str(config_path)]
    return command


@contextlib.contextmanager
def serve_subprocess(
    cwd: Path,
    config_path: Path | None = None,
    expect_lines: int = 1,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """Run ``seikyou-auth serve`` in ``cwd`` until its banner has ``expect_lines`` listeners.

    On exit the process gets SIGTERM and must stop with status 0.
    """
    child_env = {**os.environ, **(env or {})}
    log_path = cwd / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            serve_command(config_path),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=child_env,
        )
    assert process.stdout is not None
    try:
        _wait_for_banner(process, expect_lines, timeout, log_path)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        process.stdout.close()


def _wait_for_banner(
    process: subprocess.Popen[str], lines: int, timeout: float, log_path: Path
) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen = 0
    while seen <= lines:
        if time.monotonic() > deadline:
            raise TimeoutError("server did not print its listeners in time")
        line = process.stdout.readline()
        if not line:
            process.wait(10)
            raise RuntimeError(f"server exited early: {log_path.read_text().strip()}")
        seen += 1
