"""``seikyou-auth serve`` on PostgreSQL: while the database is down every login and every
local recipient gets a temporary reply (454 4.7.0, -ERR [SYS/TEMP], 451), never 535 or 550;
after the database returns the server answers normally again by itself."""

from __future__ import annotations

import asyncio
import poplib
import signal
import smtplib
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pgkit import auth_plain, execute, migrated
from support.child import end_child
from support.postgresql import PostgresqlServer, postgresql_server
from support.serverkit import FAST_LIMITS, free_ports, serve_subprocess, write_config

USER = "ma10001a"
PASSWORD = "secret"
RECOVERY_SECONDS = 15.0


@pytest.fixture
def database() -> Iterator[PostgresqlServer]:
    with postgresql_server() as server:
        yield server


def pop3_login(port: int, password: str) -> str:
    """'+OK', or the -ERR line the server answered PASS with."""
    client = poplib.POP3("127.0.0.1", port, timeout=20)
    try:
        client.user(USER)
        client.pass_(password)
        return "+OK"
    except poplib.error_proto as error:
        return bytes(error.args[0]).decode()
    finally:
        client.quit()


def mx_rcpt(port: int) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.ehlo("mx.sender.example")
        client.mail("someone@sender.example")
        code, _ = client.rcpt(f"{USER}@seikyou.ne.jp")
        return code


def until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def seeded_database(dsn: str) -> None:
    asyncio.run(migrated(dsn))
    asyncio.run(
        execute(
            dsn,
            "INSERT INTO seikyou.accounts (name, password) VALUES ($1, $2)",
            USER,
            "{PLAIN}" + PASSWORD,
        )
    )


def serve_config(tmp_path: Path, dsn: str, query_timeout: float) -> tuple[Path, list[int]]:
    """A config for submission, POP3 and MX on PostgreSQL; the three ports."""
    ports = free_ports(3)
    submission, pop3, mx = ports
    listeners = [
        {"protocol": "smtp", "role": "submission", "port": submission, "tls": "none"},
        {"protocol": "pop3", "port": pop3, "tls": "none"},
        {"protocol": "smtp", "role": "mx", "port": mx, "tls": "none"},
    ]
    config = write_config(
        tmp_path / "seikyou.toml",
        {
            "hostname": "mail.test.seikyou.ne.jp",
            "domain": "seikyou.ne.jp",
            "data_dir": str(tmp_path / "data"),
            "limits": dict(FAST_LIMITS),
            "accounts": {"store": "postgresql", "dsn": dsn, "query_timeout": query_timeout},
            "listener": [{"address": "127.0.0.1", **entry} for entry in listeners],
        },
    )
    return config, ports


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_database_down_during_logins_gives_only_temporary_replies(
    tmp_path: Path, database: PostgresqlServer, how: str
) -> None:
    dsn = database.create_database()
    seeded_database(dsn)
    config, (submission, pop3, mx) = serve_config(tmp_path, dsn, query_timeout=2.0)
    with serve_subprocess(tmp_path, config, expect_lines=3):
        assert auth_plain(submission, USER, PASSWORD) == 235
        assert auth_plain(submission, USER, "wrong") == 535
        assert pop3_login(pop3, PASSWORD) == "+OK"
        assert mx_rcpt(mx) == 250

        codes: Counter[int] = Counter()
        stop = threading.Event()

        def login_load() -> None:
            while not stop.is_set():
                codes[auth_plain(submission, USER, PASSWORD)] += 1

        workers = [threading.Thread(target=login_load) for _ in range(4)]
        for worker in workers:
            worker.start()
        try:
            time.sleep(0.5)
            if how == "stop":
                database.stop()  # fast shutdown: PostgreSQL closes every connection
            else:
                database.kill()  # a crash: its backends go away on their own
            assert until(lambda: codes[454] >= 10, 20.0), codes
        finally:
            stop.set()
            for worker in workers:
                worker.join(30)
        assert set(codes) <= {235, 454}, codes

        # Down: a right password, a wrong one, POP3 and a local recipient are all "later".
        assert auth_plain(submission, USER, PASSWORD) == 454
        assert auth_plain(submission, USER, "wrong") == 454
        assert pop3_login(pop3, PASSWORD).startswith("-ERR [SYS/TEMP]")
        assert mx_rcpt(mx) == 451

        database.start()
        assert until(lambda: auth_plain(submission, USER, PASSWORD) == 235, RECOVERY_SECONDS)
        assert auth_plain(submission, USER, "wrong") == 535
        assert pop3_login(pop3, PASSWORD) == "+OK"
        assert mx_rcpt(mx) == 250
    log = (tmp_path / "serve.log").read_text()
    assert "PostgreSQL account store" in log
    assert "Traceback" not in log


def test_a_database_too_slow_to_answer_gives_temporary_replies(
    tmp_path: Path, postgresql_session: PostgresqlServer
) -> None:
    dsn = postgresql_session.create_database()
    seeded_database(dsn)
    config, (submission, pop3, mx) = serve_config(tmp_path, dsn, query_timeout=1.0)
    # Another session holds the accounts table locked: every lookup waits past the timeout.
    locker = subprocess.Popen(
        [
            str(postgresql_session.bin_dir / "psql"),
            "-X",
            "-q",
            "-d",
            dsn,
            "-c",
            "BEGIN; LOCK TABLE seikyou.accounts IN ACCESS EXCLUSIVE MODE; "
            "SELECT pg_sleep(60); COMMIT;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        held = "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND granted"
        name = dsn.rsplit("/", 1)[1]
        assert until(lambda: postgresql_session.psql(held, name).stdout.strip() != "0", 10.0)
        with serve_subprocess(tmp_path, config, expect_lines=3):
            assert auth_plain(submission, USER, PASSWORD) == 454
            assert auth_plain(submission, USER, "wrong") == 454
            assert pop3_login(pop3, PASSWORD).startswith("-ERR [SYS/TEMP]")
            assert mx_rcpt(mx) == 451
            release = (
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
            )
            postgresql_session.psql(release, name)
            locker.wait(30)  # the lock went with its cancelled transaction
            assert until(lambda: auth_plain(submission, USER, PASSWORD) == 235, RECOVERY_SECONDS)
            assert auth_plain(submission, USER, "wrong") == 535
    finally:
        end_child(locker, signal.SIGTERM)
    log = (tmp_path / "serve.log").read_text()
    assert "did not answer within 1 s" in log
    assert "Traceback" not in log
