"""Hostile clients and the bounds they are held to, shared by tests/hostile and benches/soak.py.

- ``hostile_server(workdir, limits=..., smtp=...)``: ``seikyou-auth serve`` as a child process
  with every listener (MX, submission, submissions, POP3, POP3S) on fixed loopback ports, only
  127.0.0.1 trusted, and the accounts below. The server is a process of its own so its RSS and
  fds (``/proc/PID``) are its alone.
- ``attack(name, **params)``: runs one attack of ``ATTACKS`` in a child process (its own CPU
  time, its own fd limit raised to the hard limit) for a bounded time; yields while it runs and
  leaves its JSON summary in ``.summary``. Attackers bind 127.0.0.2 and up, never 127.0.0.1.
- Probes: ``smtps_login`` / ``submission_login`` / ``pop3s_login`` time one real login
  (smtplib, poplib) from a loopback address of their own; ``measure_logins`` takes their p50
  and tells a slow server from a starved test process; ``assert_bounds`` reports every bound
  an attack broke at once, so one run tells the whole story.

Run as a script, this module is the attack process: ``python attackkit.py NAME JSON``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import poplib
import resource
import signal
import smtplib
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from serverkit import (  # noqa: E402  (the path insert above makes it importable from benches/)
    DOMAIN,
    HOSTNAME,
    base_settings,
    free_port,
    serve_subprocess,
    write_config,
)

import seikyou_auth  # noqa: E402
from seikyou_auth.server.maildir import crlf_size, unique_name  # noqa: E402

TRUSTED = "127.0.0.1"
PROBE_SOURCE = "127.0.9.9"  # no attack ever binds this one

# Accounts: (name, password, scheme). The probe accounts are what a subscriber has; the Argon2
# account is what makes a failed AUTH expensive; MAIL_USER receives the attackers' mail.
PROBE_USER, PROBE_PASSWORD = "ma30001p", "probe-Passw0rd"
CRYPT_USER, CRYPT_PASSWORD = "ma30002c", "crypt-Passw0rd"
ARGON_USER, ARGON_PASSWORD = "ma30003a", "argon-Passw0rd"
MAIL_USER, MAIL_PASSWORD = "ma30004m", "mail-Passw0rd"
ACCOUNTS: tuple[tuple[str, str, str], ...] = (
    (PROBE_USER, PROBE_PASSWORD, "PLAIN"),
    (CRYPT_USER, CRYPT_PASSWORD, "SHA512-CRYPT"),
    (ARGON_USER, ARGON_PASSWORD, "ARGON2ID"),
    (MAIL_USER, MAIL_PASSWORD, "PLAIN"),
)

# Small limits so an attack shows its effect in seconds, not minutes.
HOSTILE_LIMITS: dict[str, Any] = {
    "idle_timeout": 3.0,
    "failure_delays": [0.2, 0.4, 0.8, 1.5],
    "unknown_recipient_delay": 0.05,
    "max_unknown_recipients": 10,
    "tls_handshake_timeout": 3.0,
    "max_connections": 300,
    "max_connections_per_address": 20,
    "shutdown_grace": 2.0,
}
LISTENERS: dict[str, dict[str, str]] = {
    "mx": {"protocol": "smtp", "role": "mx", "tls": "starttls"},
    "submission": {"protocol": "smtp", "role": "submission", "tls": "starttls"},
    "submissions": {"protocol": "smtp", "role": "submission", "tls": "implicit"},
    "pop3": {"protocol": "pop3", "tls": "starttls"},
    "pop3s": {"protocol": "pop3", "tls": "implicit"},
}

LOGIN_P50_BOUND = 0.100  # seconds: issue 9's bound for a probe login during an attack
RSS_GROWTH_BOUND_KB = 100 * 1024


def source_address(group: int, index: int) -> str:
    """The index-th attacker address of a group: 127.<group>.<index // 250>.<2 + index % 250>."""
    return f"127.{group}.{index // 250}.{2 + index % 250}"


def client_tls_context() -> ssl.SSLContext:
    """The server's certificate is a generated self-signed one: trust it blindly."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def write_accounts(path: Path, accounts: tuple[tuple[str, str, str], ...] = ACCOUNTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{name}:{seikyou_auth.hash_password(password.encode(), scheme)}:1000:1000::/home/{name}::"
        for name, password, scheme in accounts
    ]
    path.write_text("\n".join(lines) + "\n")


# --- the server ------------------------------------------------------------------------------


@dataclass
class HostileServer:
    process: subprocess.Popen[str]
    ports: dict[str, int]
    data_dir: Path
    log_path: Path

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def maildir_messages(self, user: str) -> list[Path]:
        mail = self.data_dir / "mail" / user
        return [path for sub in ("new", "cur") for path in _files(mail / sub)]

    def queued(self) -> list[Path]:
        queue = self.data_dir / "queue"
        return [path for sub in ("tmp", "new") for path in _files(queue / sub)]


def _files(directory: Path) -> list[Path]:
    return sorted(directory.iterdir()) if directory.is_dir() else []


@contextlib.contextmanager
def hostile_server(
    workdir: Path,
    limits: Mapping[str, Any] | None = None,
    smtp: Mapping[str, Any] | None = None,
    write_passwd: bool = True,
    fd_soft_limit: int = 1024,
) -> Iterator[HostileServer]:
    """``seikyou-auth serve`` with every listener on 127.0.0.1 and only 127.0.0.1 trusted.

    The server starts with the usual default fd soft limit of 1,024, which it must raise
    itself: a higher limit inherited from this process would hide that defect.
    """
    ports = {name: free_port() for name in LISTENERS}
    settings: dict[str, Any] = {
        "hostname": HOSTNAME,
        "trusted_networks": [f"{TRUSTED}/32"],
        "limits": {**HOSTILE_LIMITS, **(limits or {})},
    }
    if smtp:
        settings["smtp"] = dict(smtp)
    listeners = [{**LISTENERS[name], "port": port} for name, port in ports.items()]
    merged = base_settings(workdir, listeners, settings)
    if write_passwd:
        write_accounts(Path(merged["passwd_file"]))
    config = write_config(workdir / "seikyou.toml", merged)
    with contextlib.ExitStack() as stack:
        with _inherited_fd_soft_limit(fd_soft_limit):
            process = stack.enter_context(
                serve_subprocess(workdir, config, expect_lines=len(listeners))
            )
        yield HostileServer(process, ports, Path(merged["data_dir"]), workdir / "serve.log")


@contextlib.contextmanager
def _inherited_fd_soft_limit(limit: int) -> Iterator[None]:
    """Lower this process's fd soft limit while the server is spawned, so the child inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class ResourceWatch:
    """Samples the server's RSS and fd count every ``interval`` seconds in a thread."""

    def __init__(self, server: HostileServer, interval: float = 0.25) -> None:
        self.server = server
        self.interval = interval
        self.baseline_rss_kb = server.rss_kb()
        self.samples: list[tuple[float, int, int]] = []  # (seconds since start, RSS kB, fds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="resource-watch", daemon=True)

    def __enter__(self) -> ResourceWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(self.interval):
            with contextlib.suppress(OSError, RuntimeError):
                rss, fds = self.server.rss_kb(), self.server.fd_count()
                self.samples.append((time.monotonic() - start, rss, fds))

    @property
    def rss_growth_kb(self) -> int:
        return max((rss for _, rss, _ in self.samples), default=0) - self.baseline_rss_kb

    @property
    def peak_fds(self) -> int:
        return max((fds for _, _, fds in self.samples), default=0)


def fill_maildir(maildir: Path, count: int) -> None:
    """``count`` small messages written straight into ``new/`` (no fsync: test data)."""
    new = maildir / "new"
    for directory in ("tmp", "new", "cur"):
        (maildir / directory).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        message = f"Subject: message {index}\n\nbody {index}\n".encode()
        (new / unique_name("fill.test", len(message), crlf_size(message))).write_bytes(message)


# --- probes: real clients timing one login -------------------------------------------------


def smtps_login(port: int, user: str, password: str, source: str = PROBE_SOURCE) -> float:
    """Seconds from connect to ``235`` for AUTH PLAIN on implicit TLS (smtplib)."""
    start = time.perf_counter()
    with smtplib.SMTP_SSL(
        TRUSTED, port, timeout=10, source_address=(source, 0), context=client_tls_context()
    ) as client:
        _auth_plain(client, user, password)
        elapsed = time.perf_counter() - start
        client.quit()
    return elapsed


def submission_login(port: int, user: str, password: str, source: str = PROBE_SOURCE) -> float:
    """Seconds from connect to ``235`` for STARTTLS then AUTH PLAIN on port 587 (smtplib)."""
    start = time.perf_counter()
    with smtplib.SMTP(TRUSTED, port, timeout=10, source_address=(source, 0)) as client:
        client.starttls(context=client_tls_context())
        _auth_plain(client, user, password)
        elapsed = time.perf_counter() - start
        client.quit()
    return elapsed


def _auth_plain(client: smtplib.SMTP, user: str, password: str) -> None:
    # smtplib.login() would try CRAM-MD5 first, which a crypt-stored account cannot use: one
    # mechanism, the one every account supports.
    client.ehlo("probe.example")
    client.user, client.password = f"{user}@{DOMAIN}", password
    code, text = client.auth("PLAIN", client.auth_plain)
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, text)


class SourcePOP3_SSL(poplib.POP3_SSL):
    """poplib from a chosen loopback source address."""

    source = PROBE_SOURCE

    def _create_socket(self, timeout: float) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout, (self.source, 0))
        return self.context.wrap_socket(sock, server_hostname=self.host)


def pop3s_client(port: int, source: str = PROBE_SOURCE, timeout: float = 10) -> SourcePOP3_SSL:
    client = SourcePOP3_SSL.__new__(SourcePOP3_SSL)
    client.source = source
    SourcePOP3_SSL.__init__(client, TRUSTED, port, timeout=timeout, context=client_tls_context())
    return client


def pop3s_login(port: int, user: str, password: str, source: str = PROBE_SOURCE) -> float:
    """Seconds from connect to ``+OK`` after PASS on POP3S (poplib)."""
    start = time.perf_counter()
    client = pop3s_client(port, source)
    try:
        client.user(user)
        client.pass_(password)
        elapsed = time.perf_counter() - start
        client.quit()
    finally:
        client.close()
    return elapsed


def own_wakeup_delay() -> float:
    """Median lateness of this process waking from a 10 ms sleep: how starved the probe is."""
    lateness = []
    for _ in range(10):
        start = time.perf_counter()
        time.sleep(0.01)
        lateness.append(time.perf_counter() - start - 0.01)
    return statistics.median(lateness)


@dataclass
class LoginRounds:
    """Probe logins during an attack, judged against issue 9's p50 bound.

    A round over the bound is retried because two shared CPUs can starve this process too;
    ``starved`` records, for each failing round, whether the probe itself was starved.
    """

    bound: float
    times: list[list[float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    starved: list[bool] = field(default_factory=list)
    attack_ended_early: bool = False

    @property
    def p50s(self) -> list[float]:
        return [statistics.median(round_times) for round_times in self.times]

    def passed(self) -> bool:
        return (
            not self.errors
            and not self.attack_ended_early
            and bool(self.times)
            and min(self.p50s) < self.bound
        )

    def problem(self) -> str | None:
        if self.errors:
            return f"probe logins failed: {self.errors[:5]} (times {self.times})"
        if not self.times or min(self.p50s) >= self.bound:
            return f"probe login p50 {self.p50s} s over {self.bound} s; times {self.times}"
        if self.attack_ended_early:
            return f"the attack ended before the probe's round did: not a proof ({self.times})"
        return None


def measure_logins(
    login: Callable[[], float],
    *,
    still_attacking: Callable[[], bool],
    logins: int = 7,
    rounds: int = 3,
    bound: float = LOGIN_P50_BOUND,
) -> LoginRounds:
    """Rounds of ``logins`` probe logins until one round's p50 is under ``bound``."""
    result = LoginRounds(bound)
    for _ in range(rounds):
        times = []
        for _ in range(logins):
            try:
                times.append(login())
            except (OSError, smtplib.SMTPException, poplib.error_proto) as error:
                # One failed login already breaks the bound; more would only take time.
                result.errors.append(repr(error))
                result.times.append([*times, float("inf")])
                return result
        result.times.append(times)
        if statistics.median(times) < bound:
            result.attack_ended_early = not still_attacking()
            return result
        result.starved.append(own_wakeup_delay() > 0.02)
        if not still_attacking():
            return result
    return result


def assert_bounds(logins: LoginRounds | None = None, **bounds: str | None) -> None:
    """Fail naming every bound missed (a problem string per bound, None when held).

    When the probe's p50 is the only miss and the probe was starved in each round, the machine
    was saturated and proves nothing either way: skip.
    """
    import pytest

    problems = {name: problem for name, problem in bounds.items() if problem}
    if logins is not None and (login_problem := logins.problem()):
        starved_only = not logins.errors and logins.starved and all(logins.starved)
        if starved_only and not problems:
            pytest.skip(f"probe process starved (machine saturated): {login_problem}")
        problems["login"] = login_problem
    assert not problems, "\n".join(f"{name}: {text}" for name, text in problems.items())


def under(value: float, bound: float, what: str) -> str | None:
    """The problem text when ``value`` is not under ``bound``."""
    return None if value < bound else f"{what} {value} is not under {bound}"


# --- the attack process ----------------------------------------------------------------------


@dataclass
class RunningAttack:
    name: str
    process: subprocess.Popen[str]
    summary: dict[str, Any] = field(default_factory=dict)

    def running(self) -> bool:
        return self.process.poll() is None


@contextlib.contextmanager
def attack(name: str, *, settle: float = 1.0, **params: Any) -> Iterator[RunningAttack]:
    """Run ``ATTACKS[name](**params)`` in a child process; ``params["seconds"]`` bounds it.

    Waits ``settle`` seconds before yielding, so the attack is under way when the probe starts.
    On exit the child is stopped (SIGTERM by PID) if still running and its summary read.
    """
    process = subprocess.Popen(
        [sys.executable, __file__, name, json.dumps(params)],
        stdout=subprocess.PIPE,
        text=True,
    )
    running = RunningAttack(name, process)
    try:
        time.sleep(settle)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            out, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate(timeout=10)
        if out.strip():
            running.summary = json.loads(out.strip().splitlines()[-1])


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _connect(
    port: int,
    source: str,
    *,
    tls: bool = False,
    rcvbuf: int | None = None,
    timeout: float = 10,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((source, 0))
        sock.setblocking(False)
        await asyncio.wait_for(
            asyncio.get_running_loop().sock_connect(sock, (TRUSTED, port)), timeout
        )
        return await asyncio.wait_for(
            asyncio.open_connection(
                sock=sock,
                ssl=client_tls_context() if tls else None,
                server_hostname=TRUSTED if tls else None,
            ),
            timeout,
        )
    except BaseException:
        sock.close()
        raise


async def _reply(reader: asyncio.StreamReader, timeout: float = 20) -> int:
    """The code of one complete SMTP reply (multi-line replies read to their last line)."""
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionError("closed by server")
        if line[3:4] != b"-":
            return int(line[:3])


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()


class Tally:
    """Outcome counts of an attack, printed as its JSON summary."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, outcome: str, amount: int = 1) -> None:
        self.counts[outcome] += amount


async def _until(
    tally: Tally, deadline: float, worker: Callable[[], Awaitable[None]], pause: float
) -> None:
    """Repeat ``worker`` until the deadline; count a failed round and wait ``pause``."""
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        try:
            await asyncio.wait_for(worker(), max(0.01, deadline - loop.time()))
        except (OSError, ConnectionError, TimeoutError, ssl.SSLError, ValueError) as error:
            if loop.time() < deadline:
                tally.add(f"error {type(error).__name__}")
            await asyncio.sleep(pause)


async def hold_open(
    tally: Tally, port: int, sources: list[str], per_source: int, seconds: float, payload: str
) -> None:
    """Rows 3 and 4: connections that send ``payload`` (maybe nothing) and then wait forever.

    Each slot reconnects when the server closes it, so the server is under the same pressure
    for the whole attack.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    data = bytes.fromhex(payload)

    async def slot(source: str) -> None:
        async def once() -> None:
            reader, writer = await _connect(port, source)
            tally.add("connected")
            try:
                if data:
                    writer.write(data)
                while await reader.read(4096):
                    pass
                tally.add("closed by server")
            finally:
                _close(writer)
            await asyncio.sleep(0.2)

        await _until(tally, deadline, once, 0.2)

    await asyncio.gather(*(slot(source) for source in sources for _ in range(per_source)))


async def ehlo_flood(
    tally: Tally, port: int, sources: list[str], per_source: int, seconds: float
) -> None:
    """Row 1: pipeline ``EHLO`` without ever reading, with a tiny receive buffer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    batch = b"EHLO flood.example\r\n" * 512

    async def flooder(source: str) -> None:
        async def once() -> None:
            _reader, writer = await _connect(port, source, rcvbuf=4096)
            tally.add("connected")
            try:
                while loop.time() < deadline:
                    writer.write(batch)
                    await writer.drain()
                    tally.add("bytes sent", len(batch))
            finally:
                _close(writer)

        await _until(tally, deadline, once, 0.2)

    await asyncio.gather(*(flooder(source) for source in sources for _ in range(per_source)))


async def data_flood(
    tally: Tally, port: int, source: str, connections: int, lines: int, seconds: float
) -> None:
    """Row 2: DATA of ``a\\r\\n`` x ``lines`` on the MX, on several connections at once."""
    chunk = b"a\r\n" * 65536

    async def sender(index: int) -> None:
        reader, writer = await _connect(port, source)
        try:
            await _reply(reader)
            for command in (
                b"EHLO flood.example",
                b"MAIL FROM:<flood@example.org>",
                f"RCPT TO:<{MAIL_USER}@{DOMAIN}>".encode(),
                b"DATA",
            ):
                writer.write(command + b"\r\n")
                tally.add(f"{command.split()[0].decode()} {await _reply(reader)}")
            writer.write(f"Subject: flood {index}\r\n\r\n".encode())
            for _ in range(lines // 65536):
                writer.write(chunk)
                await writer.drain()
            writer.write(b"a\r\n" * (lines % 65536) + b".\r\n")
            tally.add(f"end of data {await _reply(reader, timeout=seconds)}")
            writer.write(b"QUIT\r\n")
            await _reply(reader)
        finally:
            _close(writer)

    results = await asyncio.wait_for(
        asyncio.gather(*(sender(index) for index in range(connections)), return_exceptions=True),
        seconds,
    )
    for result in results:
        if isinstance(result, BaseException):
            tally.add(f"error {type(result).__name__}")


async def noop_pipeline(tally: Tally, port: int, source: str, batch: int, seconds: float) -> None:
    """Row 5: pipeline ``NOOP`` in large batches and read every reply, as fast as possible."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def once() -> None:
        reader, writer = await _connect(port, source)
        try:
            await _reply(reader)
            writer.write(b"EHLO noop.example\r\n")
            await _reply(reader)
            while loop.time() < deadline:
                writer.write(b"NOOP\r\n" * batch)
                replies = 0
                while replies < batch:  # counted in bulk: the attacker must outpace the server
                    chunk = await asyncio.wait_for(reader.read(1 << 20), 20)
                    if not chunk:
                        raise ConnectionError("closed by server")
                    replies += chunk.count(b"\n")
                tally.add("noops", batch)
        finally:
            _close(writer)

    await _until(tally, deadline, once, 0.2)


async def auth_failures(
    tally: Tally, port: int, sources: list[str], per_source: int, user: str, seconds: float
) -> None:
    """Row 8: failed AUTH PLAIN on implicit TLS, over and over, against an expensive account."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    token = base64.b64encode(f"\0{user}@{DOMAIN}\0wrong-password".encode())

    async def attacker(source: str) -> None:
        async def once() -> None:
            reader, writer = await _connect(port, source, tls=True)
            tally.add("connected")
            try:
                await _reply(reader)
                writer.write(b"EHLO fail.example\r\n")
                await _reply(reader)
                while loop.time() < deadline:
                    writer.write(b"AUTH PLAIN " + token + b"\r\n")
                    code = await _reply(reader, timeout=60)
                    tally.add(f"AUTH {code}")
                    if code == 421:
                        return
            finally:
                _close(writer)

        await _until(tally, deadline, once, 0.2)

    await asyncio.gather(*(attacker(source) for source in sources for _ in range(per_source)))


async def slow_retrieval(
    tally: Tally, port: int, source: str, user: str, password: str, seconds: float
) -> None:
    """Soak only: POP3S sessions that read every message slowly and delete nothing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def once() -> None:
        reader, writer = await _connect(port, source, tls=True)
        try:
            for command in (b"", f"USER {user}".encode(), f"PASS {password}".encode(), b"RETR 1"):
                if command:
                    writer.write(command + b"\r\n")
                line = await asyncio.wait_for(reader.readline(), 20)
                if not line.startswith(b"+OK"):
                    tally.add("refused")
                    return
            while (line := await asyncio.wait_for(reader.readline(), 20)) not in (b".\r\n", b""):
                await asyncio.sleep(0.001)
            tally.add("retrieved")
            writer.write(b"QUIT\r\n")
            await asyncio.wait_for(reader.readline(), 20)
        finally:
            _close(writer)

    await _until(tally, deadline, once, 0.5)


async def rcpt_harvest(tally: Tally, port: int, source: str, seconds: float) -> None:
    """Row 9: RCPT TO one unknown local user after another until the server hangs up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def once() -> None:
        reader, writer = await _connect(port, source)
        try:
            await _reply(reader)
            for command in (b"EHLO harvest.example", b"MAIL FROM:<harvest@example.org>"):
                writer.write(command + b"\r\n")
                await _reply(reader)
            for index in range(20_000):
                writer.write(f"RCPT TO:<nobody{index}@{DOMAIN}>\r\n".encode())
                code = await _reply(reader)
                tally.add(f"RCPT {code}")
                if code == 421:
                    return
        finally:
            _close(writer)

    await _until(tally, deadline, once, 0.5)


SMUGGLED_BODY = (
    b"Subject: innocent\r\n\r\nhello\r.\r\n"
    b"MAIL FROM:<ceo@bank.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
    b"Subject: smuggled\r\n\r\nsmuggled body\r\n.\r\n"
)


async def smuggle(
    tally: Tally, port: int, source: str, user: str, password: str, seconds: float
) -> None:
    """Row 11: authenticated submissions whose body hides a second message behind ``\\r.\\r\\n``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    token = base64.b64encode(f"\0{user}@{DOMAIN}\0{password}".encode())

    async def once() -> None:
        reader, writer = await _connect(port, source, tls=True)
        try:
            await _reply(reader)
            for command in (
                b"EHLO smuggle.example",
                b"AUTH PLAIN " + token,
                f"MAIL FROM:<{user}@{DOMAIN}>".encode(),
                f"RCPT TO:<{user}@{DOMAIN}>".encode(),
                b"DATA",
            ):
                writer.write(command + b"\r\n")
                await _reply(reader)
            writer.write(SMUGGLED_BODY)
            tally.add(f"end of data {await _reply(reader)}")
            writer.write(b"QUIT\r\n")
            await _reply(reader)
        finally:
            _close(writer)
        await asyncio.sleep(0.5)

    await _until(tally, deadline, once, 0.5)


async def pop3_logins(
    tally: Tally, port: int, source: str, user: str, password: str, seconds: float
) -> None:
    """Row 10: log in to a (huge) mailbox over POP3S, STAT, QUIT, over and over."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def once() -> None:
        reader, writer = await _connect(port, source, tls=True)
        try:
            for command in (b"", f"USER {user}".encode(), f"PASS {password}".encode(), b"STAT"):
                if command:
                    writer.write(command + b"\r\n")
                line = await asyncio.wait_for(reader.readline(), 60)
                if not line.startswith(b"+OK"):
                    tally.add("refused")
                    return
            tally.add("logged in")
            writer.write(b"QUIT\r\n")
            await asyncio.wait_for(reader.readline(), 60)
        finally:
            _close(writer)

    await _until(tally, deadline, once, 0.5)


async def trickle(
    port: int,
    source: str,
    *,
    setup: list[str],
    drip: bytes,
    interval: float,
    observe: float,
    smtp: bool = True,
    octets: int = 1,
) -> float | None:
    """Row 6: after ``setup`` commands, send ``drip`` round and round, ``octets`` at a time
    every ``interval`` seconds.

    Returns how long after the setup the server closed the connection, or None when it was
    still open after ``observe`` seconds.
    """
    loop = asyncio.get_running_loop()
    reader, writer = await _connect(port, source)
    try:
        for command in ["", *setup]:
            if command:
                writer.write(command.encode() + b"\r\n")
            if smtp:
                await _reply(reader)
            elif not (await asyncio.wait_for(reader.readline(), 20)).startswith(b"+OK"):
                raise ConnectionError(f"POP3 refused {command!r}")
        start = loop.time()

        async def until_closed() -> None:
            while await reader.read(4096):
                pass

        closed = asyncio.ensure_future(until_closed())
        sent = 0
        while not closed.done() and loop.time() - start < observe:
            piece = bytes(drip[(sent + index) % len(drip)] for index in range(octets))
            try:
                writer.write(piece)
            except (ConnectionError, RuntimeError):
                break
            sent += octets
            await asyncio.wait([closed], timeout=interval)
        if closed.done():
            with contextlib.suppress(ConnectionError, OSError):
                closed.result()
            return loop.time() - start
        closed.cancel()
        return None
    finally:
        _close(writer)


async def slowloris(
    tally: Tally,
    port: int,
    source: str,
    setup: list[str],
    drip: str,
    interval: float,
    connections: int,
    seconds: float,
    smtp: bool = True,
) -> None:
    """Soak only: ``connections`` trickling clients, each reconnecting once cut off."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def client() -> None:
        async def once() -> None:
            held = await trickle(
                port,
                source,
                setup=setup,
                drip=drip.encode(),
                interval=interval,
                observe=max(0.0, deadline - loop.time()),
                smtp=smtp,
            )
            tally.add("cut off" if held is not None else "still open at the end")

        await _until(tally, deadline, once, 0.5)

    await asyncio.gather(*(client() for _ in range(connections)))


ATTACKS: dict[str, Callable[..., Awaitable[None]]] = {
    "hold_open": hold_open,
    "ehlo_flood": ehlo_flood,
    "data_flood": data_flood,
    "noop_pipeline": noop_pipeline,
    "auth_failures": auth_failures,
    "slow_retrieval": slow_retrieval,
    "slowloris": slowloris,
    "rcpt_harvest": rcpt_harvest,
    "smuggle": smuggle,
    "pop3_logins": pop3_logins,
}


def _attack_main(name: str, params_json: str) -> None:
    _raise_fd_limit()
    tally = Tally()
    params = json.loads(params_json)

    async def run() -> None:
        task = asyncio.ensure_future(ATTACKS[name](tally, **params))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        # Connections cut off while the attack is being stopped: counted, not printed.
        loop.set_exception_handler(
            lambda _loop, context: tally.add(
                f"unretrieved {type(context.get('exception')).__name__}"
            )
        )
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, params["seconds"] + 30)

    try:
        asyncio.run(run())
    finally:
        print(json.dumps(dict(tally.counts)), flush=True)


if __name__ == "__main__":
    _attack_main(sys.argv[1], sys.argv[2])
