"""SMTP AUTH load generator: seikyou-auth's submission listener against stock aiosmtpd.

Starts both servers as child processes on loopback (same passwd-file, same
account, ``{PLAIN}`` stored so all three mechanisms work on both), then for each
mechanism runs many concurrent clients doing connect → EHLO → AUTH → QUIT for a
bounded time and session count, and prints AUTH sessions per second side by side
with the ratio. The clients run in this process, on their own event loop.

    python benches/loadgen.py [--clients 64] [--seconds 3] [--max-sessions 50000]
                              [--uvloop] [--workers 1] [--mechanisms PLAIN LOGIN CRAM-MD5]
                              [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import seikyou_auth

ROOT = Path(__file__).resolve().parents[1]
USER = "ma10001a@seikyou.ne.jp"
PASSWORD = b"bench-Passw0rd"
MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")
SESSION_TIMEOUT = 30.0  # a stuck session counts as an error instead of hanging the run
T = TypeVar("T")


class BenchError(Exception):
    pass


PLAIN_TOKEN = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD)
Step = Callable[[bytes], bytes | None]


def _script(mechanism: str) -> list[tuple[bytes, Step]]:
    """(expected reply code, what to send in answer) for one session; None ends it."""

    def send(data: bytes) -> Step:
        return lambda _line: data

    def cram_md5(line: bytes) -> bytes:
        challenge = base64.b64decode(line[4:].strip())
        return base64.b64encode(seikyou_auth.cram_md5_response(USER, PASSWORD, challenge)) + b"\r\n"

    auth: list[tuple[bytes, Step]] = {
        "PLAIN": [(b"250", send(b"AUTH PLAIN " + PLAIN_TOKEN + b"\r\n"))],
        "LOGIN": [
            (b"250", send(b"AUTH LOGIN\r\n")),
            (b"334", send(base64.b64encode(USER.encode()) + b"\r\n")),
            (b"334", send(base64.b64encode(PASSWORD) + b"\r\n")),
        ],
        "CRAM-MD5": [(b"250", send(b"AUTH CRAM-MD5\r\n")), (b"334", cram_md5)],
    }[mechanism]
    return [
        (b"220", send(b"EHLO loadgen.example\r\n")),
        *auth,
        (b"235", send(b"QUIT\r\n")),
        (b"221", lambda _line: None),
    ]


class AuthSession(asyncio.Protocol):
    """One connect → EHLO → AUTH → QUIT as a bare protocol: the generator must cost the
    machine less than the servers it measures, so no streams here."""

    def __init__(self, script: list[tuple[bytes, Step]], done: asyncio.Future[None]) -> None:
        self.script = iter(script)
        self.done = done
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while b"\n" in self.buffer:
            line, _, self.buffer = self.buffer.partition(b"\n")
            if line[3:4] == b"-":
                continue
            expected, step = next(self.script)
            if not line.startswith(expected):
                self._finish(BenchError(f"expected {expected!r}, got {line!r}"))
                return
            answer = step(line)
            if answer is None:
                self._finish(None)
                return
            self.transport.write(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(BenchError(f"connection lost: {exc}"))

    def _finish(self, error: Exception | None) -> None:
        assert self.transport is not None
        self.transport.close()
        if not self.done.done():
            if error is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(error)


async def one_session(port: int, mechanism: str) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    await loop.create_connection(lambda: AuthSession(_script(mechanism), done), "127.0.0.1", port)
    await done


@dataclass
class Result:
    sessions: int
    errors: int
    seconds: float
    server_cpu: float = 0.0  # CPU seconds the server's processes used meanwhile

    @property
    def rate(self) -> float:
        return self.sessions / self.seconds if self.seconds else 0.0

    @property
    def per_cpu_second(self) -> float:
        """Sessions per server CPU-second: unlike the rate, indifferent to other load."""
        return self.sessions / self.server_cpu if self.server_cpu else 0.0


def process_tree_cpu(pid: int) -> float:
    """User+system CPU seconds of ``pid`` and its live descendants (the workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
        pending.extend(int(child) for child in children)
    return total


async def measure(
    port: int, mechanism: str, clients: int, seconds: float, max_sessions: int
) -> Result:
    done = 0
    errors = 0
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal done, errors
        while time.monotonic() < deadline and done + errors < max_sessions:
            try:
                await asyncio.wait_for(one_session(port, mechanism), SESSION_TIMEOUT)
                done += 1
            except (OSError, BenchError, TimeoutError):
                errors += 1
                if errors > max(100, done):
                    raise

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    return Result(done, errors, time.monotonic() - started)


def _wait_ready(process: subprocess.Popen[str], marker: str, timeout: float = 30) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise BenchError("server exited: " + "".join(lines))
        lines.append(line)
        if marker in line:
            return line
    raise BenchError("server did not start in time")


@contextmanager
def _child(command: list[str], cwd: Path, log: Path) -> Iterator[subprocess.Popen[str]]:
    with log.open("w") as err:
        process = subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.PIPE, stderr=err, text=True, env=os.environ
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def seikyou_server(
    workdir: Path, use_uvloop: bool, workers: int, tables: str = ""
) -> Iterator[tuple[int, int]]:
    """``seikyou-auth serve`` with one submission listener; ``tables``: more TOML tables."""
    port = _free_port()
    config = workdir / "bench.toml"
    config.write_text(
        f"""
hostname = "seikyou.bench"
domain = "seikyou.ne.jp"
data_dir = "{workdir / "data"}"
passwd_file = "{workdir / "passwd"}"
event_loop = "{"uvloop" if use_uvloop else "asyncio"}"
workers = {workers}

[limits]
max_connections_per_address = 100000
{tables}
[[listener]]
protocol = "smtp"
role = "submission"
address = "127.0.0.1"
port = {port}
tls = "starttls"
"""
    )
    command = [sys.executable, "-m", "seikyou_auth", "serve", "--config", str(config)]
    with _child(command, workdir, workdir / "seikyou.log") as process:
        _wait_ready(process, f":{port}")
        yield port, process.pid


@contextmanager
def aiosmtpd_server(workdir: Path, use_uvloop: bool, workers: int) -> Iterator[tuple[int, int]]:
    command = [
        sys.executable,
        str(ROOT / "benches" / "aiosmtpd_baseline.py"),
        "--passwd",
        str(workdir / "passwd"),
        "--workers",
        str(workers),
    ]
    if use_uvloop:
        command.append("--uvloop")
    with _child(command, workdir, workdir / "aiosmtpd.log") as process:
        line = _wait_ready(process, "ready ")
        yield int(line.split()[1]), process.pid


def run_bench(args: argparse.Namespace) -> dict[str, dict[str, list[Result]]]:
    """Both servers run at once; rounds alternate between them so load drift hits both alike."""
    results: dict[str, dict[str, list[Result]]] = {
        name: {mechanism: [] for mechanism in args.mechanisms} for name in SERVERS
    }
    with tempfile.TemporaryDirectory(prefix="seikyou-loadgen-") as tmp:
        workdir = Path(tmp)
        stored = seikyou_auth.hash_password(PASSWORD, "PLAIN")
        (workdir / "passwd").write_text(f"ma10001a:{stored}:1000:1000::/home/ma10001a::\n")
        with (
            seikyou_server(workdir, args.uvloop, args.workers) as ours,
            aiosmtpd_server(workdir, args.uvloop, args.workers) as theirs,
        ):
            servers = {"seikyou-auth": ours, "aiosmtpd": theirs}
            for port, _ in servers.values():
                _client_loop(one_session(port, "PLAIN"))  # warm up, and prove it works
            for _ in range(args.rounds):
                for mechanism in args.mechanisms:
                    for name, (port, pid) in servers.items():
                        before = process_tree_cpu(pid)
                        result = _client_run(args, port, mechanism)
                        result.server_cpu = process_tree_cpu(pid) - before
                        results[name][mechanism].append(result)
    return results


SERVERS = ("seikyou-auth", "aiosmtpd")


def _client_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """The clients always use uvloop when it is there: the load generator must not be the
    bottleneck that hides the servers' difference."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _client_run(args: argparse.Namespace, port: int, mechanism: str) -> Result:
    return _client_loop(measure(port, mechanism, args.clients, args.seconds, args.max_sessions))


def _median_rate(runs: list[Result]) -> float:
    return statistics.median(run.rate for run in runs)


def _median_efficiency(runs: list[Result]) -> float:
    return statistics.median(run.per_cpu_second for run in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=2.0, help="per round and figure")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians")
    parser.add_argument("--max-sessions", type=int, default=50_000)
    parser.add_argument("--uvloop", action="store_true", help="uvloop for both servers")
    parser.add_argument("--workers", type=int, default=1, help="SO_REUSEPORT processes each")
    parser.add_argument("--mechanisms", nargs="+", default=list(MECHANISMS), choices=MECHANISMS)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    results = run_bench(args)
    loop = "uvloop" if args.uvloop else "asyncio"
    print(
        f"SMTP AUTH sessions/s (connect, EHLO, AUTH, QUIT); {args.clients} concurrent clients; "
        f"median of {args.rounds} alternating rounds of {args.seconds:g} s; server loop={loop}, "
        f"workers={args.workers}, backend={seikyou_auth.BACKEND}"
    )
    print(
        f"{'':<10} {'sessions/s':^29} {'sessions per server CPU-second':^35}\n"
        f"{'mechanism':<10} {'seikyou':>9} {'aiosmtpd':>9} {'ratio':>7}   "
        f"{'seikyou':>9} {'aiosmtpd':>9} {'ratio':>7}"
    )
    summary = {}
    for mechanism in args.mechanisms:
        ours, theirs = (results[name][mechanism] for name in SERVERS)
        rate = (_median_rate(ours), _median_rate(theirs))
        efficiency = (_median_efficiency(ours), _median_efficiency(theirs))
        rate_ratio = rate[0] / rate[1] if rate[1] else float("inf")
        efficiency_ratio = efficiency[0] / efficiency[1] if efficiency[1] else float("inf")
        errors = sum(run.errors for run in ours + theirs)
        note = f"  ({errors} errors)" if errors else ""
        print(
            f"{mechanism:<10} {rate[0]:>9.0f} {rate[1]:>9.0f} {rate_ratio:>6.2f}x   "
            f"{efficiency[0]:>9.0f} {efficiency[1]:>9.0f} {efficiency_ratio:>6.2f}x{note}"
        )
        summary[mechanism] = {
            "rate": {"seikyou_auth": round(rate[0], 1), "aiosmtpd": round(rate[1], 1)},
            "rate_ratio": round(rate_ratio, 2),
            "per_cpu_second": {
                "seikyou_auth": round(efficiency[0], 1),
                "aiosmtpd": round(efficiency[1], 1),
            },
            "per_cpu_second_ratio": round(efficiency_ratio, 2),
            "errors": errors,
        }
    if args.json:
        args.json.write_text(json.dumps({"loop": loop, "results": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
