"""Hostile clients and the bounds they are held to, shared by tests/hostile and benches/soak.py.

- ``hostile_server(workdir, limits=..., smtp=...)``: ``seikyou-auth serve`` as a child process
  with every listener (MX, submission, submissions, POP3, POP3S) on fixed loopback ports, only
  127.0.0.1 trusted, and the accounts below. The server is a process of its own so its RSS and
  fds (``/proc/PID``) are its alone.
- ``attack(name, **params)``: runs one attack of attackers.py in a child process (its own CPU
  time, its own fd limit raised to the hard limit) for a bounded time; yields while it runs and
  leaves its JSON summary in ``.summary``. Attackers bind 127.0.0.2 and up, never 127.0.0.1.
- Probes: ``smtps_login`` / ``submission_login`` / ``pop3s_login`` time one real login
  (smtplib, poplib) from a loopback address of their own; ``measure_logins`` takes their p50
  and tells a slow server from a starved test process; ``assert_bounds`` reports every bound
  an attack broke at once, so one run tells the whole story.
"""

from __future__ import annotations

import contextlib
import json
import os
import poplib
import resource
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from attackers import OVERRAN, SERVER_ADDRESS, client_tls_context  # noqa: E402
from support.serverkit import (  # noqa: E402  (the path insert above makes it importable from benches/)
    DOMAIN,
    HOSTNAME,
    base_settings,
    free_ports,
    serve_subprocess,
    write_config,
)

import seikyou_auth  # noqa: E402
from seikyou_auth.storage.maildir_layout import crlf_size, unique_name  # noqa: E402

ATTACKERS_SCRIPT = Path(__file__).with_name("attackers.py")
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
    ports = dict(zip(LISTENERS, free_ports(len(LISTENERS)), strict=True))
    settings: dict[str, Any] = {
        "hostname": HOSTNAME,
        "trusted_networks": [f"{SERVER_ADDRESS}/32"],
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
        self.baseline_fds = server.fd_count()  # listeners, log, loop: before any client
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
        SERVER_ADDRESS, port, timeout=10, source_address=(source, 0), context=client_tls_context()
    ) as client:
        _auth_plain(client, user, password)
        elapsed = time.perf_counter() - start
        client.quit()
    return elapsed


def submission_login(port: int, user: str, password: str, source: str = PROBE_SOURCE) -> float:
    """Seconds from connect to ``235`` for STARTTLS then AUTH PLAIN on port 587 (smtplib)."""
    start = time.perf_counter()
    with smtplib.SMTP(SERVER_ADDRESS, port, timeout=10, source_address=(source, 0)) as client:
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
    SourcePOP3_SSL.__init__(
        client, SERVER_ADDRESS, port, timeout=timeout, context=client_tls_context()
    )
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

    def assert_ran(self, ran: bool, what: str) -> None:
        """The attack reached the server as the row needs (``ran``). An attacker that overran
        its own deadline was starved of CPU (nice 10 on a saturated machine): it proves nothing
        either way, as a starved probe does in ``assert_bounds``, so the test is skipped."""
        if ran:
            return
        import pytest

        if OVERRAN in self.summary:
            pytest.skip(f"attacker process starved (machine saturated): {what}: {self.summary}")
        raise AssertionError(f"{what}: {self.summary}")

    def wait_for_end(self, timeout: float) -> None:
        """Let the attack end at its own deadline; one that overruns it (a starved process on a
        loaded machine) is stopped by ``attack`` on exit, and prints its counts all the same."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)


@contextlib.contextmanager
def attack(name: str, *, settle: float = 1.0, **params: Any) -> Iterator[RunningAttack]:
    """Run ``ATTACKS[name](**params)`` in a child process; ``params["seconds"]`` bounds it.

    Waits ``settle`` seconds before yielding, so the attack is under way when the probe starts.
    On exit the child is stopped (SIGTERM by PID) if still running and its summary read.
    """
    # On the 2-CPU test machine the attackers share the server's CPUs, which Internet clients
    # never do: at a lower priority they still take every idle cycle, but not the server's.
    process = subprocess.Popen(
        ["nice", "-n", "10", sys.executable, str(ATTACKERS_SCRIPT), name, json.dumps(params)],
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
