"""Two real ``seikyou-auth serve`` nodes sharing one Redis and one maildir tree."""

from __future__ import annotations

import os
import poplib
import signal
import smtplib
import threading
import time
from pathlib import Path

from nodekit import (
    ATTACKER_SOURCE,
    FAILURE_DELAYS,
    LOCK_LEASE,
    SUBSCRIBER_SOURCE,
    Node,
    accepts,
    cli,
    failed_login,
    login,
    refused_in_use,
    two_nodes,
)
from support.redis import RedisServer

RECIPIENT = "ma10001a@seikyou.ne.jp"


def send(node: Node, subject: str) -> None:
    with smtplib.SMTP(
        node.address, node.mx_port, timeout=15, source_address=(SUBSCRIBER_SOURCE, 0)
    ) as client:
        client.sendmail(
            "sender@example.net",
            [RECIPIENT],
            f"From: sender@example.net\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n",
        )


def uidls(client: poplib.POP3) -> dict[str, str]:
    """UIDL -> Subject of every message in the mailbox."""
    _, listing, _ = client.uidl()
    found = {}
    for entry in listing:
        number, uidl = entry.decode().split()
        _, lines, _ = client.top(int(number), 0)
        subject = next(line for line in lines if line.startswith(b"Subject: "))
        found[uidl] = subject.decode()[len("Subject: ") :]
    return found


def test_mail_submitted_on_a_is_retrieved_on_b(
    tmp_path: Path, redis: RedisServer, postgresql_dsn: str
) -> None:
    with two_nodes(tmp_path, redis, postgresql_dsn) as (node_a, node_b):
        send(node_a, "from node A")
        client = login(node_b)
        _, lines, _ = client.retr(1)
        assert b"Subject: from node A" in lines
        seen_on_b = uidls(client)
        client.quit()
        # The message's UIDL is the same whichever node lists it, now in cur/.
        client = login(node_a)
        assert uidls(client) == seen_on_b
        client.quit()


def test_both_nodes_delivering_into_one_tree_at_once(
    tmp_path: Path, redis: RedisServer, postgresql_dsn: str
) -> None:
    per_node = 15
    with two_nodes(tmp_path, redis, postgresql_dsn) as (node_a, node_b):
        errors: list[BaseException] = []

        def deliver_all(node: Node) -> None:
            try:
                for index in range(per_node):
                    send(node, f"{node.name}-{index}")
            except BaseException as error:  # reported below, not lost in the thread
                errors.append(error)

        threads = [threading.Thread(target=deliver_all, args=(node,)) for node in (node_a, node_b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors
        new = tmp_path / "shared-data" / "mail" / "ma10001a" / "new"
        names = os.listdir(new)
        assert len(names) == 2 * per_node
        # Maildir's rule: the delivering process and host are in the name; no tmp/ leftovers.
        assert not os.listdir(new.parent / "tmp")
        first_view = uidls(client := login(node_a))
        client.quit()
        second_view = uidls(client := login(node_b))
        client.quit()
        expected = {f"{name}-{index}" for name in ("a", "b") for index in range(per_node)}
        assert set(first_view.values()) == expected
        assert len(first_view) == 2 * per_node  # one UIDL per message
        assert second_view == first_view  # stable across sessions and nodes


def test_session_on_a_locks_b_and_a_killed_node_lock_lasts_one_lease(
    tmp_path: Path, redis: RedisServer, postgresql_dsn: str
) -> None:
    with two_nodes(tmp_path, redis, postgresql_dsn) as (node_a, node_b):
        send(node_a, "locked")
        holder = login(node_a)
        refused_in_use(node_b)
        # Node A dies mid-session: the kernel drops its flock at once, the Redis lease lasts.
        os.kill(node_a.process.pid, signal.SIGKILL)
        node_a.process.wait(10)
        killed = time.monotonic()
        try:
            login(node_b).quit()
            in_use_after_kill = False
        except poplib.error_proto as error:
            in_use_after_kill = b"[IN-USE]" in error.args[0]
        if time.monotonic() - killed < LOCK_LEASE:
            assert in_use_after_kill, "the dead node's lease holds the mailbox until it expires"
        deadline = killed + LOCK_LEASE * 4
        while True:
            try:
                client = login(node_b)
                break
            except poplib.error_proto as error:
                assert b"[IN-USE]" in error.args[0]
                assert time.monotonic() < deadline, "the lease of a dead node never expired"
                time.sleep(0.2)
        assert time.monotonic() - killed >= LOCK_LEASE * 0.5
        assert client.stat()[0] == 1  # nothing lost with the dead session
        client.quit()
        holder.close()


def test_three_failures_on_a_make_the_fourth_on_b_wait(
    tmp_path: Path, redis: RedisServer, postgresql_dsn: str
) -> None:
    with two_nodes(tmp_path, redis, postgresql_dsn) as (node_a, node_b):
        for _ in range(3):
            failed_login(node_a, ATTACKER_SOURCE)
        waited = failed_login(node_b, ATTACKER_SOURCE)
        assert waited >= FAILURE_DELAYS[3] - 0.05, "node B did not know node A's failures"
        # The subscriber, from another address, is not slowed by the attacker.
        login(node_b).quit()


def test_user_passwd_takes_effect_on_both_nodes(
    tmp_path: Path, redis: RedisServer, postgresql_dsn: str
) -> None:
    with two_nodes(tmp_path, redis, postgresql_dsn) as (node_a, node_b):
        for node in (node_a, node_b):
            login(node, "ma10002b").quit()  # both nodes now hold the old password in cache
        cli(node_a.config, "user", "passwd", "ma10002b", "--password-stdin", stdin="changed\n")
        changed = time.monotonic()
        # Each try from a fresh address, so a try before the change arrives costs no penalty.
        fresh_sources = (f"127.0.0.{100 + index}" for index in range(100))
        for node in (node_a, node_b):
            while not accepts(node, "ma10002b", "changed", next(fresh_sources)):
                assert time.monotonic() - changed < 1.0, f"node {node.name} kept the old password"
        # The bound: in effect everywhere within one second of the command.
        assert time.monotonic() - changed < 1.0
        for node in (node_a, node_b):
            failed_login(node, SUBSCRIBER_SOURCE, "ma10002b", "second-secret")


def test_redis_stopped_logins_continue_then_shared_again(
    tmp_path: Path, redis: RedisServer, postgresql_dsn: str
) -> None:
    with two_nodes(tmp_path, redis, postgresql_dsn) as (node_a, node_b):
        redis.stop()
        for node in (node_a, node_b):
            for _ in range(3):
                login(node).quit()
        for node in (node_a, node_b):
            log = node.log_text
            assert log.count("unavailable") == 1, log
            assert "node-local" in log
        # The node-local lock still excludes a second session on the same node.
        holder = login(node_a)
        refused_in_use(node_a)
        holder.quit()

        redis.start()
        time.sleep(1.5)  # past the retry interval
        for _ in range(3):
            failed_login(node_a, ATTACKER_SOURCE)
        waited = failed_login(node_b, ATTACKER_SOURCE)
        assert waited >= FAILURE_DELAYS[3] - 0.05, "node B did not know node A's failures"
        assert "answers again" in node_a.log_text


def test_guesses_spread_over_addresses_and_nodes_slow_down_per_account(
    tmp_path: Path, redis: RedisServer, postgresql_dsn: str
) -> None:
    with two_nodes(tmp_path, redis, postgresql_dsn, {"per_account_failures": True}) as (
        node_a,
        node_b,
    ):
        for index, node in enumerate((node_a, node_b, node_a)):
            failed_login(node, f"127.0.0.{70 + index}")
        fresh_address = "127.0.0.80"
        assert failed_login(node_b, fresh_address) >= FAILURE_DELAYS[3] - 0.05
        # The subscriber's own login is not delayed: only failures wait.
        login(node_a).quit()


def test_hung_redis_does_not_stall_logins_beyond_the_timeout(
    tmp_path: Path, redis: RedisServer, postgresql_dsn: str
) -> None:
    assert redis.process is not None
    with two_nodes(tmp_path, redis, postgresql_dsn) as (node_a, _):
        login(node_a).quit()  # connected to Redis before it hangs
        os.kill(redis.process.pid, signal.SIGSTOP)  # accepts connections, answers nothing
        try:
            started = time.monotonic()
            client = login(node_a)  # the lease cannot be taken: node-local lock only
            client.quit()
            logged_in = time.monotonic() - started
            failed = failed_login(node_a, ATTACKER_SOURCE)
        finally:
            os.kill(redis.process.pid, signal.SIGCONT)
        # The bound: a hung Redis costs a login at most the timeout (0.5 s), plus a
        # generous margin for a loaded machine; a failure waits its own first step on top.
        assert logged_in < 0.5 + 3.0
        assert failed < 0.5 + FAILURE_DELAYS[0] + 3.0
        assert node_a.log_text.count("unavailable") == 1
