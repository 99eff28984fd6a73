"""``seikyou-auth queue list | show ID | flush | delete ID`` as an operator runs them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from queuekit import (
    LOCAL_ACCOUNT,
    LOCAL_SENDER,
    REMOTE,
    cli,
    delivery_status,
    parse,
    relay_settings,
    smarthost,
)
from support.serverkit import SMTP_SUBMISSION, base_settings, write_config, write_passwd

from seikyou_auth.server.config import load_config
from seikyou_auth.storage.queue import DeliveryState, Envelope, MailQueue

MESSAGE = b"From: <ma10001a@seikyou.ne.jp>\nSubject: queued\n\nbody line\n"


def _setup(tmp_path: Path, port: int | None) -> tuple[Path, MailQueue]:
    settings = base_settings(tmp_path, [SMTP_SUBMISSION], relay_settings(port))
    write_passwd(Path(settings["passwd_file"]), {LOCAL_ACCOUNT: "secret"})
    config_path = write_config(tmp_path / "seikyou.toml", settings)
    config = load_config(str(config_path))
    return config_path, MailQueue(config.queue_dir, config.hostname)


def _queue(queue: MailQueue, recipients: tuple[str, ...] = (REMOTE,)) -> str:
    return queue.enqueue(Envelope(LOCAL_SENDER, recipients), MESSAGE).name


def _one_line_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert text in lines[0]
    assert "Traceback" not in lines[0]


def test_list_shows_each_message_with_its_state(tmp_path: Path) -> None:
    config, queue = _setup(tmp_path, None)
    assert cli(config, "queue", "list").stdout.endswith("-- 0 message(s) queued\n")
    first = _queue(queue, (REMOTE, "boss@example.org"))
    queue.save_state(first, DeliveryState(3, "451 4.7.1 greylisted, come back later", 0.0))
    second = _queue(queue)
    result = cli(config, "queue", "list")
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()[1:3]]
    assert rows[0][0] == first and rows[1][0] == second  # oldest first
    assert rows[0][2:] == [
        LOCAL_SENDER,
        f"{REMOTE},boss@example.org",
        "3",
        "451 4.7.1 greylisted, come back later",
    ]
    assert rows[1][4:] == ["0", "-"]
    assert result.stdout.endswith("-- 2 message(s) queued\n")


def test_show_prints_envelope_state_and_message(tmp_path: Path) -> None:
    config, queue = _setup(tmp_path, None)
    message_id = _queue(queue)
    queue.save_state(message_id, DeliveryState(1, "connection refused", time.time() + 600))
    result = cli(config, "queue", "show", message_id)
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition("\n\n")
    fields = dict(line.split(":", 1) for line in head.splitlines())
    assert fields["id"].strip() == message_id
    assert fields["sender"].strip() == LOCAL_SENDER
    assert fields["recipients"].strip() == REMOTE
    assert fields["attempts"].strip() == "1"
    assert fields["last error"].strip() == "connection refused"
    assert "next attempt" in fields
    assert body == MESSAGE.decode()


@pytest.mark.parametrize("bad_id", ["NOSUCHID0000", "../../etc/passwd", ".hidden", "tmp/x", ""])
@pytest.mark.parametrize("action", ["show", "delete"])
def test_bad_ids_are_one_line_errors(tmp_path: Path, action: str, bad_id: str) -> None:
    config, queue = _setup(tmp_path, None)
    _queue(queue)
    _one_line_error(cli(config, "queue", action, bad_id), "no queued message")
    assert len(queue.pending()) == 1


def test_delete_removes_message_and_state(tmp_path: Path) -> None:
    config, queue = _setup(tmp_path, None)
    message_id = _queue(queue)
    queue.save_state(message_id, DeliveryState(2, "busy", 0.0))
    result = cli(config, "queue", "delete", message_id)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"deleted queued message {message_id}\n"
    assert queue.pending() == []
    assert list(queue.state_dir.iterdir()) == []
    _one_line_error(cli(config, "queue", "delete", message_id), "no queued message")


def test_delete_refuses_a_message_being_relayed(tmp_path: Path) -> None:
    config, queue = _setup(tmp_path, None)
    message_id = _queue(queue)
    with queue.claim(queue.new / message_id):  # as the relay holds it during an attempt
        _one_line_error(cli(config, "queue", "delete", message_id), "being relayed right now")
    assert [path.name for path in queue.pending()] == [message_id]


def test_flush_makes_an_immediate_attempt(tmp_path: Path) -> None:
    with smarthost() as (sink, port):
        config, queue = _setup(tmp_path, port)
        message_id = _queue(queue)
        # Not due for an hour: only flush sends it now.
        queue.save_state(message_id, DeliveryState(4, "451 later", time.time() + 3600))
        result = cli(config, "queue", "flush")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{message_id}\trelayed",
        "-- 1 message(s) tried, 0 still queued",
    ]
    ((received),) = sink.received
    assert received.recipients == [REMOTE]
    assert received.content.endswith(b"Subject: queued\r\n\r\nbody line\r\n")
    assert queue.pending() == [] and list(queue.state_dir.iterdir()) == []


def test_flush_against_a_4xx_defers_and_counts_the_attempt(tmp_path: Path) -> None:
    with smarthost("452 4.2.2 mailbox full") as (_, port):
        config, queue = _setup(tmp_path, port)
        message_id = _queue(queue)
        result = cli(config, "queue", "flush")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"{message_id}\tdeferred: 452 4.2.2 mailbox full"
    state = queue.state(message_id)
    assert (state.attempts, state.last_error) == (1, "452 4.2.2 mailbox full")
    assert state.next_attempt > time.time()


def test_flush_with_an_unreachable_smarthost_keeps_the_message(tmp_path: Path) -> None:
    with smarthost() as (_, port):
        pass  # stopped: the port refuses connections now
    config, queue = _setup(tmp_path, port)
    message_id = _queue(queue)
    result = cli(config, "queue", "flush")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{message_id}\tdeferred: smarthost 127.0.0.1:")
    assert [path.name for path in queue.pending()] == [message_id]


def test_a_relay_killed_mid_data_loses_nothing(tmp_path: Path) -> None:
    with smarthost() as (sink, port):
        config, queue = _setup(tmp_path, port)
        message_id = _queue(queue)
        sink.data_delay = 30.0  # the smarthost holds the 250 while the sender dies
        flushing = subprocess.Popen(
            [sys.executable, "-m", "seikyou_auth", "queue", "flush", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert sink.in_data.wait(30)
        finally:
            flushing.kill()
            flushing.wait(10)
        # Still queued, and its lock died with the process: the next flush sends it again.
        assert [path.name for path in queue.pending()] == [message_id]
        sink.data_delay = 0.0
        result = cli(config, "queue", "flush")
    assert result.stdout.splitlines()[0] == f"{message_id}\trelayed"
    assert queue.pending() == []
    # At least once, as SMTP promises: the copy the dead relay never saw confirmed, and this one.
    assert len(sink.received) == 2


def test_flush_returns_a_refused_message_to_the_local_sender(tmp_path: Path) -> None:
    with smarthost("550 5.1.1 no such user") as (_, port):
        config, queue = _setup(tmp_path, port)
        message_id = _queue(queue)
        result = cli(config, "queue", "flush")
    assert result.stdout.splitlines()[0] == f"{message_id}\tbounced"
    (report,) = (tmp_path / "data" / "mail" / LOCAL_ACCOUNT / "new").iterdir()
    _, recipient = delivery_status(parse(report.read_bytes()))
    assert recipient["Final-Recipient"] == f"rfc822; {REMOTE}"
    assert queue.pending() == []


def test_a_partly_deferred_message_keeps_its_id_and_is_not_sent_twice(tmp_path: Path) -> None:
    with smarthost() as (sink, port):
        sink.rcpt_replies = {"later": "451 4.3.0 busy"}
        config, queue = _setup(tmp_path, port)
        message_id = _queue(queue, ("pass@example.com", "later@example.com"))
        cli(config, "queue", "flush")
        # Rewritten in place (an atomic rename): same id, only the deferred recipient left.
        assert [path.name for path in queue.pending()] == [message_id]
        assert queue.entry(queue.new / message_id).envelope.recipients == ("later@example.com",)
        sink.rcpt_replies = {}
        result = cli(config, "queue", "flush")
    assert result.stdout.splitlines()[0] == f"{message_id}\trelayed"
    assert [received.recipients for received in sink.received] == [
        ["pass@example.com"],
        ["later@example.com"],
    ]
    assert list(queue.tmp.iterdir()) == []  # no rewrite left behind


def test_list_and_show_with_unreadable_and_set_aside_files(tmp_path: Path) -> None:
    config, queue = _setup(tmp_path, None)
    queue.ensure()
    (queue.new / "GARBAGE00000").write_bytes(b"\x00not json\n")
    kept = queue.enqueue(Envelope("", (REMOTE,)), MESSAGE, queue.failed).name
    listing = cli(config, "queue", "list")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[1].startswith("GARBAGE00000\t") and "unreadable" in lines[1]
    assert lines[-2:] == [
        f"-- 1 message(s) set aside in {queue.failed}",
        "-- 1 message(s) queued",
    ]
    shown = cli(config, "queue", "show", kept)
    assert shown.returncode == 0, shown.stderr
    assert "status:       set aside (queue/failed)" in shown.stdout
    assert "sender:       <>" in shown.stdout
    _one_line_error(
        cli(config, "queue", "show", "GARBAGE00000"), "message GARBAGE00000 is unreadable"
    )
