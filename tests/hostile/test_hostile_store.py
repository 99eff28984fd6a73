"""Issue 9 rows 9, 10, 12, 13: recipients, big mailboxes, crash leftovers, a broken store."""

from __future__ import annotations

import os
import poplib
import statistics
import threading
import time
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
from serverkit import DOMAIN
from smtp_wire import Wire, plain_ir

from seikyou_auth.server.maildir import MaildirStore


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
# here that server showed 100-215 ms, and with the listing in a thread 37-41 ms (the thread
# still holds the GIL in 5 ms slices), measured 2026-11-30 on the 2-CPU dev machine.
STALL_BOUND = 0.075


def test_row10_a_huge_mailbox_login_does_not_stall_everyone(tmp_path: Path) -> None:
    with hostile_server(tmp_path) as server:
        fill_maildir(server.data_dir / "mail" / MAIL_USER, BIG_MAILBOX)
        port = server.ports["pop3s"]
        probe = pop3s_client(port)
        probe.user(PROBE_USER)
        probe.pass_(PROBE_PASSWORD)
        counts: list[int] = []
        rounds: list[list[float]] = []
        try:
            for _ in range(3):
                done = threading.Event()

                def big_logins(done: threading.Event = done) -> None:
                    try:
                        for _ in range(3):
                            big = pop3s_client(port, source_address(10, 0), timeout=60)
                            big.user(MAIL_USER)
                            big.pass_(MAIL_PASSWORD)
                            counts.append(big.stat()[0])
                            big.quit()
                    finally:
                        done.set()

                worker = threading.Thread(target=big_logins)
                worker.start()
                latencies = []
                while not done.is_set() and len(latencies) < 5000:
                    started = time.perf_counter()
                    probe.noop()
                    latencies.append(time.perf_counter() - started)
                    time.sleep(0.01)
                worker.join(120)
                rounds.append(latencies)
                if _third_longest(latencies) < STALL_BOUND or own_wakeup_delay() <= 0.02:
                    break
        finally:
            probe.quit()
            probe.close()
        assert counts and set(counts) == {BIG_MAILBOX}, counts
    # NOOP round trips sampled every 10 ms over three big logins: a listing on the loop stalls
    # it once per login, so the third-longest round trip is the shortest of those stalls, and
    # two hiccups of a shared machine alone cannot fail the round.
    stalls = [_third_longest(latencies) for latencies in rounds]
    if min(stalls) >= STALL_BOUND and own_wakeup_delay() > 0.02:
        pytest.skip(f"probe process starved (machine saturated): longest NOOPs {stalls}")
    assert min(stalls) < STALL_BOUND, (
        f"longest NOOP round trip per round {stalls} s; medians "
        f"{[statistics.median(latencies) for latencies in rounds]}"
    )


def _third_longest(latencies: list[float]) -> float:
    return sorted(latencies)[-3] if len(latencies) >= 3 else float("inf")


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
    with hostile_server(tmp_path):
        kept = {path: path.exists() for path in leftovers}
    assert kept == leftovers


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
