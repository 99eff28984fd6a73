"""Soak: issue 9's attacks all at once, for minutes, while real subscribers use the server.

Starts ``seikyou-auth serve`` as a child process (tests/hostile/attackkit.py's
``hostile_server``: every listener on loopback, only 127.0.0.1 trusted), launches every
load-shaped attack of tests/hostile in child processes of their own (the same code the tests
run), and meanwhile, from this process:

- logs in over SMTP AUTH PLAIN on implicit TLS ({PLAIN} and SHA512-CRYPT accounts) and POP3S,
- delivers messages with smtplib (submission on 465, authenticated) to one mailbox,
- retrieves from that mailbox with poplib.

Every few seconds it prints the server's RSS and fds and the logins so far; at the end the
login p50/p99 and messages accepted vs stored. Exit status 1 when a message answered 250 is
not in the mailbox (one stored whose 250 the client missed, e.g. by a timeout, is no loss),
a smuggled message was accepted, or a subscriber's login failed; 0 otherwise. Login p50 and
RSS are reported, not judged: the attack processes share the server's CPUs here and every
attack runs at once, while tests/hostile holds each attack to issue 9's bounds.

    python benches/soak.py [--minutes 10] [--report-every 5] [--keep DIR]

CI: ``python benches/soak.py --minutes 1``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import poplib
import shutil
import smtplib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "hostile"))

from attackers import SERVER_ADDRESS, client_tls_context  # noqa: E402
from attackkit import (  # noqa: E402
    ARGON_USER,
    CRYPT_PASSWORD,
    CRYPT_USER,
    MAIL_PASSWORD,
    MAIL_USER,
    PROBE_PASSWORD,
    PROBE_USER,
    HostileServer,
    RunningAttack,
    attack,
    fill_maildir,
    hostile_server,
    own_wakeup_delay,
    pop3s_client,
    pop3s_login,
    smtps_login,
    source_address,
)
from support.serverkit import DOMAIN  # noqa: E402

from seikyou_auth.schemes import HASH_THREADS  # noqa: E402

SENDER_SOURCE = "127.0.8.8"  # the subscribers of this soak, apart from the attackers
READER_SOURCE = "127.0.8.9"
BIG_MAILBOX = 30_000
FORGED_NAME = "evil client=203.0.113.9 tls=no result=ok"
# The soak runs every attack at once, so the global cap is above one attack's worth.
SOAK_LIMITS = {"max_connections": 600, "idle_timeout": 10.0}


@dataclass
class Subscribers:
    """What the real clients did; updated from their threads."""

    login_times: list[float] = field(default_factory=list)
    login_errors: list[str] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    delivery_errors: list[str] = field(default_factory=list)
    retrievals: int = 0
    retrieval_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _repeat(stop: threading.Event, pause: float, action: Callable[[], None]) -> None:
    while not stop.wait(pause):
        action()


def _logins(subscribers: Subscribers, server: HostileServer) -> Callable[[], None]:
    attempts = [
        lambda: smtps_login(server.ports["submissions"], PROBE_USER, PROBE_PASSWORD),
        lambda: smtps_login(server.ports["submissions"], CRYPT_USER, CRYPT_PASSWORD),
        lambda: pop3s_login(server.ports["pop3s"], PROBE_USER, PROBE_PASSWORD),
    ]
    turn = iter(range(sys.maxsize))

    def login_once() -> None:
        try:
            elapsed = attempts[next(turn) % len(attempts)]()
        except (OSError, smtplib.SMTPException, poplib.error_proto) as error:
            with subscribers.lock:
                subscribers.login_errors.append(repr(error))
            return
        with subscribers.lock:
            subscribers.login_times.append(elapsed)

    return login_once


def _deliveries(subscribers: Subscribers, server: HostileServer) -> Callable[[], None]:
    numbers = iter(range(sys.maxsize))

    def deliver_once() -> None:
        message_id = f"<soak-{next(numbers)}@soak.example>"
        message = EmailMessage()
        message["From"] = f"{PROBE_USER}@{DOMAIN}"
        message["To"] = f"{CRYPT_USER}@{DOMAIN}"
        message["Subject"] = "soak"
        message["Message-ID"] = message_id
        message.set_content("soak body\n" * 50)
        try:
            with smtplib.SMTP_SSL(
                SERVER_ADDRESS,
                server.ports["submissions"],
                timeout=30,
                source_address=(SENDER_SOURCE, 0),
                context=client_tls_context(),
            ) as client:
                client.ehlo("soak.example")
                client.user, client.password = f"{PROBE_USER}@{DOMAIN}", PROBE_PASSWORD
                client.auth("PLAIN", client.auth_plain)
                refused = client.send_message(message)
                client.quit()
        except (OSError, smtplib.SMTPException) as error:
            with subscribers.lock:
                subscribers.delivery_errors.append(repr(error))
            return
        if not refused:
            with subscribers.lock:
                subscribers.accepted.add(message_id)

    return deliver_once


def _retrievals(subscribers: Subscribers, server: HostileServer) -> Callable[[], None]:
    def retrieve_once() -> None:
        try:
            client = pop3s_client(server.ports["pop3s"], READER_SOURCE, timeout=30)
            try:
                client.user(CRYPT_USER)
                client.pass_(CRYPT_PASSWORD)
                count, _ = client.stat()
                if count:
                    client.retr(count)
                client.quit()
            finally:
                client.close()
        except (OSError, poplib.error_proto) as error:
            with subscribers.lock:
                subscribers.retrieval_errors.append(repr(error))
            return
        with subscribers.lock:
            subscribers.retrievals += 1

    return retrieve_once


def _stored_ids(server: HostileServer) -> set[str]:
    found = set()
    for path in server.maildir_messages(CRYPT_USER):
        for line in path.read_bytes().splitlines():
            if line.lower().startswith(b"message-id:"):
                found.add(line.split(b":", 1)[1].strip().decode())
                break
    return found


def _attacks(server: HostileServer) -> Iterator[tuple[str, dict[str, object]]]:
    """Every attack of issue 9 that is a load, sized so all of them fit on one machine."""
    ports = server.ports
    yield "ehlo_flood", {"port": ports["mx"], "sources": [source_address(1, 0)], "per_source": 4}
    yield (
        "data_flood",
        {
            "port": ports["mx"],
            "source": source_address(2, 0),
            "recipient": f"{MAIL_USER}@{DOMAIN}",
            "connections": 2,
            "lines": 8_700_000,
        },
    )
    yield (
        "hold_open",
        {
            "port": ports["submissions"],
            "sources": [source_address(3, 0)],
            "per_source": 600,
            "payload": "160301",
        },
    )
    yield (
        "hold_open",
        {
            "port": ports["submission"],
            "sources": [source_address(4, index) for index in range(40)],
            "per_source": 20,
            "payload": "",
        },
    )
    yield "pipeline", {"port": ports["mx"], "source": source_address(5, 0), "batch": 20_000}
    yield (
        "slowloris",
        {
            "port": ports["mx"],
            "source": source_address(6, 0),
            "setup": ["EHLO slow.example"],
            "drip": "NOOP\r\n",
            "interval": 2.0,  # a NOOP line per 12 s: idle by SOAK_LIMITS' 10 s
            "connections": 10,
        },
    )
    yield (
        "slowloris",
        {
            "port": ports["pop3"],
            "source": source_address(6, 1),
            "setup": [],
            "drip": "NOOP\r\n",
            "interval": 2.0,  # a NOOP line per 12 s: idle by SOAK_LIMITS' 10 s
            "connections": 10,
            "smtp": False,
        },
    )
    yield (
        "slow_retrieval",
        {
            "port": ports["pop3s"],
            "source": source_address(7, 0),
            "user": MAIL_USER,
            "password": MAIL_PASSWORD,
        },
    )
    yield (
        "auth_failures",
        {
            "port": ports["submissions"],
            "sources": [source_address(8, index) for index in range(8)],
            "per_source": 20,
            "address": f"{ARGON_USER}@{DOMAIN}",
        },
    )
    yield "rcpt_harvest", {"port": ports["mx"], "source": source_address(9, 0), "domain": DOMAIN}
    yield (
        "pop3_logins",
        {
            "port": ports["pop3s"],
            "source": source_address(10, 0),
            "user": MAIL_USER,
            "password": MAIL_PASSWORD,
        },
    )
    yield (
        "smuggle",
        {
            "port": ports["submissions"],
            "source": source_address(11, 0),
            "address": f"{PROBE_USER}@{DOMAIN}",
            "password": PROBE_PASSWORD,
        },
    )
    yield (
        "auth_failures",
        {
            "port": ports["submissions"],
            "sources": [source_address(14, 0)],
            "per_source": 2,
            "address": FORGED_NAME,
        },
    )


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def soak(minutes: float, report_every: float, workdir: Path) -> int:
    seconds = minutes * 60
    subscribers = Subscribers()
    with hostile_server(workdir, limits=SOAK_LIMITS) as server:
        fill_maildir(server.data_dir / "mail" / MAIL_USER, BIG_MAILBOX)
        baseline_kb = server.rss_kb()
        peak_kb, peak_fds = baseline_kb, server.fd_count()
        print(f"server pid {server.process.pid}, RSS {baseline_kb / 1024:.0f} MB at start")
        stop = threading.Event()
        workers = [
            threading.Thread(target=_repeat, args=(stop, pause, action), daemon=True)
            for pause, action in (
                (0.3, _logins(subscribers, server)),
                (0.2, _deliveries(subscribers, server)),
                (1.0, _retrievals(subscribers, server)),
            )
        ]
        with contextlib.ExitStack() as stack:
            attacks: list[RunningAttack] = [
                stack.enter_context(attack(name, settle=0, seconds=seconds, **params))
                for name, params in _attacks(server)
            ]
            for worker in workers:
                worker.start()
            start = time.monotonic()
            print(" time   RSS MB   fds  logins ok/failed   p50 ms  accepted  stored")
            while (elapsed := time.monotonic() - start) < seconds:
                time.sleep(min(report_every, max(0.0, seconds - elapsed)))
                rss, fds = server.rss_kb(), server.fd_count()
                peak_kb, peak_fds = max(peak_kb, rss), max(peak_fds, fds)
                with subscribers.lock:
                    times = list(subscribers.login_times)
                    failed, accepted = len(subscribers.login_errors), len(subscribers.accepted)
                p50 = statistics.median(times) * 1000 if times else float("nan")
                print(
                    f"{time.monotonic() - start:5.0f}s {rss / 1024:8.1f} {fds:5d}"
                    f" {len(times):8d}/{failed:<8d} {p50:8.1f} {accepted:9d}"
                    f" {len(server.maildir_messages(CRYPT_USER)):7d}",
                    flush=True,
                )
            stop.set()
            for worker in workers:
                worker.join(60)
        stored = _stored_ids(server)
        log_bytes = len(server.log_text())

    print("\nattacks:")
    for running in attacks:
        print(f"  {running.name}: {running.summary}")
    times = subscribers.login_times
    p50 = statistics.median(times) if times else float("inf")
    growth_kb = peak_kb - baseline_kb
    lost = subscribers.accepted - stored
    smuggled = sum(
        count
        for running in attacks
        if running.name == "smuggle"
        for outcome, count in running.summary.items()
        if outcome == "end of data 250"
    )
    print(
        f"\nlogins: {len(times)} ok, {len(subscribers.login_errors)} failed;"
        f" p50 {p50 * 1000:.1f} ms, p99 {_percentile(times, 0.99) * 1000:.1f} ms"
    )
    print(f"  first failures: {subscribers.login_errors[:3]}")
    print(
        f"deliveries: {len(subscribers.accepted)} accepted, {len(stored)} stored,"
        f" {len(lost)} lost, {len(subscribers.delivery_errors)} failed to submit"
        f" (first: {subscribers.delivery_errors[:3]})"
    )
    print(
        f"retrievals: {subscribers.retrievals} ok, {len(subscribers.retrieval_errors)} failed"
        f" (first: {subscribers.retrieval_errors[:3]})"
    )
    print(
        f"server: RSS peak +{growth_kb / 1024:.1f} MB, peak fds {peak_fds}, log {log_bytes} bytes"
    )
    # A slow login means little when this process itself was starved of CPU.
    print(
        f"this machine: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs,"
        f" this process wakes {own_wakeup_delay() * 1000:.1f} ms late from a 10 ms sleep"
    )
    # Reported, not judged: here a dozen attack processes share the server's two CPUs, which
    # Internet clients never do, and every attack runs at once; tests/hostile holds each attack
    # to issue 9's bounds (login p50 < 100 ms, RSS growth < 100 MB) on its own.
    beyond_argon2 = max(0, growth_kb - ARGON2_WORKING_KB) / 1024
    print(
        f"  note   login p50 {p50 * 1000:.0f} ms; RSS growth {growth_kb / 1024:.0f} MB, of which"
        f" up to {ARGON2_WORKING_KB // 1024} MB is ARGON2ID working memory"
        f" ({beyond_argon2:.0f} MB beyond it)"
    )
    verdicts = {
        "accepted == stored": not lost and subscribers.accepted <= stored,
        "nothing smuggled": smuggled == 0,
        "every subscriber login succeeded": not subscribers.login_errors,
    }
    for name, held in verdicts.items():
        print(f"  {'ok    ' if held else 'FAILED'} {name}")
    return 0 if all(verdicts.values()) else 1


# Each hashing thread (HASH_THREADS, and the lane for penalised addresses) holds an ARGON2ID
# check's whole memory (m=65536 KiB) while it runs and hands it back afterwards: the scheme's
# cost, bounded by the thread count, and not growth. The 100 MB bound comes on top of it.
ARGON2_WORKING_KB = 65536 * (HASH_THREADS + 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--report-every", type=float, default=5.0, help="seconds")
    parser.add_argument("--keep", type=Path, help="run in DIR and keep it (server log, data)")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return soak(args.minutes, args.report_every, args.keep)
    workdir = Path(tempfile.mkdtemp(prefix="seikyou-soak-"))
    try:
        return soak(args.minutes, args.report_every, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
