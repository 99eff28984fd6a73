"""Issue 9 rows 9, 10, 12, 13: recipients, big mailboxes, crash leftovers, a broken store."""

from __future__ import annotations

import os
import poplib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from attackkit import (
    HOSTILE_LIMITS,
    MAIL_PASSWORD,
    MAIL_USER,
    PROBE_PASSWORD,
    PROBE_USER,
    fill_maildir,
    hostile_server,
    own_wakeup_delay,
    pop3s_client,
    source_address,
)
from support.serverkit import DOMAIN
from support.smtp_wire import Wire, plain_ir

from seikyou_auth.storage.maildir_writer import MaildirStore


def test_row9_unknown_recipients_end_in_421_with_growing_delays(tmp_path: Path) -> None:
    budget = HOSTILE_LIMITS["max_unknown_recipients"]
    delay = HOSTILE_LIMITS["unknown_recipient_delay"]
    with (
        hostile_server(tmp_path) as server,
        Wire(server.ports["mx"], source=source_address(9, 0), timeout=30) as client,
    ):
        client.ehlo()
        assert client.command("MAIL FROM:<harvester@example.org>")[0] == 250
        assert client.command(f"RCPT TO:<{MAIL_USER}@{DOMAIN}>")[0] == 250
        codes: list[int] = []
        start = time.monotonic()
        for index in range(20_000):
            if time.monotonic() - start > 60:
                break
            try:
                code, _ = client.command(f"RCPT TO:<nobody{index}@{DOMAIN}>")
            except (ConnectionError, OSError):
                break
            codes.append(code)
            if code == 421:
                break
        took = time.monotonic() - start
        assert codes[-1:] == [421], codes[-5:]
        assert budget - 1 <= codes.count(550) <= budget, codes
        assert set(codes) == {550, 421}, codes
        assert client.closed_by_server()
    # The n-th unknown recipient waits (n - 1) x delay, at most 5 x delay: a lower bound only.
    waited = sum(min(n - 1, 5) * delay for n in range(1, codes.count(550) + 1))
    assert took >= waited * 0.9, (took, waited)


BIG_MAILBOX = 30_000
# Issue 9 measured 137-214 ms of stall for everyone per login with the listing on the loop;
# here such a server stalled 100-215 ms, while a listing in a thread still costs the loop
# 35-45 ms (the thread holds the GIL in 5 ms slices). Measured 2026-11-30, 2-CPU dev machine.
STALL_BOUND = 0.075


def test_row10_a_huge_mailbox_login_does_not_stall_everyone(tmp_path: Path) -> None:
    # The subscriber has 30,000 messages already in cur/ (a first login moved them there) and
    # logs in again; meanwhile a probe session's NOOP round trips, one every 10 ms, measure
    # how long the event loop stalls. A round over the bound is retried: a hiccup of a shared
    # machine does not repeat three times, a stall per login does.
    with hostile_server(tmp_path) as server:
        fill_maildir(server.data_dir / "mail" / MAIL_USER, BIG_MAILBOX)
        port = server.ports["pop3s"]
        counts = [_big_login(port)]
        stalls: list[float] = []
        starved: list[bool] = []
        for _ in range(3):
            stalls.append(_longest_noop_during(port, lambda: counts.append(_big_login(port))))
            if stalls[-1] < STALL_BOUND:
                break
            starved.append(own_wakeup_delay() > 0.02)
    assert counts == [BIG_MAILBOX] * (len(stalls) + 1), counts
    if min(stalls) >= STALL_BOUND and all(starved):
        pytest.skip(f"probe process starved (machine saturated): longest NOOPs {stalls}")
    assert min(stalls) < STALL_BOUND, f"longest NOOP round trip per round: {stalls} s"


def _big_login(port: int) -> int:
    """Log in to the big mailbox; its message count."""
    client = pop3s_client(port, source_address(10, 0), timeout=60)
    try:
        client.user(MAIL_USER)
        client.pass_(MAIL_PASSWORD)
        count: int = client.stat()[0]
        client.quit()
    finally:
        client.close()
    return count


def _longest_noop_during(port: int, action: Callable[[], object]) -> float:
    """The longest NOOP round trip of a probe's POP3 session, one every 10 ms, while
    ``action`` runs in a thread."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as error:  # raised again in the test's thread below
            failures.append(error)

    probe = pop3s_client(port)
    try:
        probe.user(PROBE_USER)
        probe.pass_(PROBE_PASSWORD)
        worker = threading.Thread(target=run)
        worker.start()
        longest = 0.0
        while worker.is_alive():
            started = time.perf_counter()
            probe.noop()
            longest = max(longest, time.perf_counter() - started)
            time.sleep(0.01)
        worker.join()
        probe.quit()
    finally:
        probe.close()
    if failures:
        raise failures[0]
    return longest


STALE = time.time() - 37 * 3600


def test_row12_stale_tmp_files_are_removed_at_start_fresh_ones_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    leftovers = {}
    for directory in (data / "mail" / MAIL_USER / "tmp", data / "queue" / "tmp"):
        directory.mkdir(parents=True)
        stale, fresh = directory / "1.M1P1.crashed,S=5", directory / "2.M2P2.writing,S=5"
        for path in (stale, fresh):
            path.write_bytes(b"part\n")
        os.utime(stale, (STALE, STALE))
        leftovers[stale] = False
        leftovers[fresh] = True
    with hostile_server(tmp_path) as server:
        # The sweep runs in a thread beside the listeners, so readiness does not wait for it.
        deadline = time.monotonic() + 20
        while "removed 2 stale file(s)" not in server.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        kept = {path: path.exists() for path in leftovers}
        log = server.log_text()
    assert kept == leftovers
    assert "removed 2 stale file(s) left in tmp/ by an earlier crash" in log


@pytest.mark.parametrize(
    "passwd",
    [b"", b"garbage without a colon\n\x00\xff\xfe binary junk\n<html>502 Bad Gateway</html>\n"],
    ids=["empty", "garbage"],
)
def test_row13_broken_account_store_defers_instead_of_bouncing(
    tmp_path: Path, passwd: bytes
) -> None:
    passwd_file = tmp_path / "data" / "passwd"
    passwd_file.parent.mkdir(parents=True)
    passwd_file.write_bytes(passwd)
    # MAIL_USER had mail before the bad deploy: a real subscriber the store cannot see now.
    MaildirStore(tmp_path / "data" / "mail", "test.example").deliver(
        MAIL_USER, b"Subject: earlier\n\nbefore the deploy\n"
    )
    with hostile_server(tmp_path, write_passwd=False) as server:
        with Wire(server.ports["mx"], source=source_address(13, 0)) as client:
            client.ehlo()
            assert client.command("MAIL FROM:<friend@example.org>")[0] == 250
            code, text = client.command(f"RCPT TO:<{MAIL_USER}@{DOMAIN}>")
            assert 400 <= code < 500, (code, text)
        with Wire(
            server.ports["submissions"], implicit_tls=True, source=source_address(13, 1)
        ) as client:
            client.ehlo()
            code, text = client.command(f"AUTH PLAIN {plain_ir(MAIL_USER, MAIL_PASSWORD)}")
            assert code == 454, (code, text)
        pop3 = pop3s_client(server.ports["pop3s"], source_address(13, 2))
        try:
            pop3.user(MAIL_USER)
            with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
                pop3.pass_(MAIL_PASSWORD)
        finally:
            pop3.close()
        log = server.log_text()
    assert "Traceback" not in log, log
    if passwd:
        assert "line 1" in log and "line 2" in log, log
