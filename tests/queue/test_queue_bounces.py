"""Retries and bounces against a real smarthost (aiosmtpd on loopback)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from queuekit import (
    ACCOUNTS,
    LOCAL_ACCOUNT,
    LOCAL_SENDER,
    REMOTE,
    cli,
    delivery_status,
    parse,
    queue_server,
    queued,
    relay_settings,
    smarthost,
    submit,
    submit_to,
    wait_for,
)
from support.serverkit import (
    SMTP_SUBMISSION,
    RunningServer,
    base_settings,
    free_port,
    serve_subprocess,
    write_config,
    write_passwd,
)

from seikyou_auth.storage.queue import Envelope, MailQueue


def test_550_returns_a_dsn_to_the_local_sender(tmp_path: Path) -> None:
    with smarthost("550 5.1.1 <friend@example.com>: Recipient address rejected") as (sink, port):
        with queue_server(tmp_path, relay_settings(port)) as server:
            submit(server, [REMOTE], subject="to a missing friend")
            wait_for(lambda: server.messages(LOCAL_ACCOUNT))
            wait_for(lambda: not queued(server))
            (bounce,) = server.messages(LOCAL_ACCOUNT)
    assert sink.received == []
    report = parse(bounce)
    assert report["To"].addresses[0].addr_spec == LOCAL_SENDER
    assert report["Auto-Submitted"] == "auto-replied"
    per_message, per_recipient = delivery_status(report)
    assert per_message["Reporting-MTA"] == "dns; mail.test.seikyou.ne.jp"
    assert per_message["Arrival-Date"]
    assert per_recipient["Final-Recipient"] == f"rfc822; {REMOTE}"
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Status"] == "5.1.1"
    assert per_recipient["Remote-MTA"] == "dns; 127.0.0.1"
    assert per_recipient["Diagnostic-Code"].startswith("smtp; 550 5.1.1 <friend@example.com>")
    headers = list(report.iter_parts())[2].get_content()
    assert "Subject: to a missing friend" in headers
    assert "hello" not in headers  # headers only, never the body


def test_only_refused_recipients_are_returned(tmp_path: Path) -> None:
    with smarthost("550 5.1.1 no such user") as (sink, port):
        with queue_server(tmp_path, relay_settings(port)) as server:
            submit(server, ["pass@example.com", REMOTE])
            wait_for(lambda: server.messages(LOCAL_ACCOUNT))
            wait_for(lambda: not queued(server))
            (bounce,) = server.messages(LOCAL_ACCOUNT)
    assert [received.recipients for received in sink.received] == [["pass@example.com"]]
    _, *recipients = delivery_status(parse(bounce))
    assert [block["Final-Recipient"] for block in recipients] == [f"rfc822; {REMOTE}"]


def test_4xx_keeps_the_message_queued_with_its_error(tmp_path: Path) -> None:
    with smarthost("451 4.3.0 mailbox busy, try later") as (sink, port):
        with queue_server(tmp_path, relay_settings(port)) as server:
            submit(server, [REMOTE])
            wait_for(lambda: sink.sessions >= 3)  # retried after 0.2 s, then every 0.4 s
            (path,) = queued(server)
            listing = cli(tmp_path / "seikyou.toml", "queue", "list")
            assert server.messages(LOCAL_ACCOUNT) == []
    assert listing.returncode == 0, listing.stderr
    header, row, *_ = listing.stdout.splitlines()
    assert header.split("\t") == ["ID", "AGE", "SENDER", "RECIPIENTS", "ATTEMPTS", "LAST ERROR"]
    message_id, age, sender, recipients, attempts, last_error = row.split("\t")
    assert message_id == path.name
    assert age.endswith("s")
    assert (sender, recipients) == (LOCAL_SENDER, REMOTE)
    assert int(attempts) >= 2
    assert last_error == "451 4.3.0 mailbox busy, try later"


def test_lifetime_expiry_bounces_with_the_last_error(tmp_path: Path) -> None:
    with smarthost("451 4.3.0 greylisted") as (_, port):
        settings = relay_settings(port, max_lifetime=0.5)
        with queue_server(tmp_path, settings) as server:
            started = time.monotonic()
            submit(server, [REMOTE])
            wait_for(lambda: server.messages(LOCAL_ACCOUNT))
            bounced_after = time.monotonic() - started
            wait_for(lambda: not queued(server))
            (bounce,) = server.messages(LOCAL_ACCOUNT)
    assert bounced_after >= 0.5  # not before the lifetime is over
    _, recipient = delivery_status(parse(bounce))
    assert recipient["Final-Recipient"] == f"rfc822; {REMOTE}"
    assert recipient["Status"] == "4.4.7"
    assert "delivery time expired" in recipient["Diagnostic-Code"]
    assert "451 4.3.0 greylisted" in recipient["Diagnostic-Code"]


def test_without_relay_host_mail_expires_too(tmp_path: Path) -> None:
    with queue_server(tmp_path, relay_settings(None, max_lifetime=0.3)) as server:
        submit(server, [REMOTE])
        wait_for(lambda: server.messages(LOCAL_ACCOUNT))
        (bounce,) = server.messages(LOCAL_ACCOUNT)
    _, recipient = delivery_status(parse(bounce))
    assert "no relay_host configured" in recipient["Diagnostic-Code"]


def _queue_directly(server: RunningServer, envelope: Envelope, message: bytes) -> None:
    """Queue as a running server would (for envelopes submission never makes) and wake it."""
    MailQueue(server.config.queue_dir, "mail.test.seikyou.ne.jp").enqueue(envelope, message)
    server.loop.call_soon_threadsafe(server.app.queue.changed.set)


def test_null_sender_is_never_bounced(tmp_path: Path) -> None:
    with smarthost("550 5.1.1 no such user") as (sink, port):
        with queue_server(tmp_path, relay_settings(port)) as server:
            queue_dir = server.config.queue_dir
            _queue_directly(server, Envelope("", (REMOTE,)), b"Subject: a bounce\n\nx\n")
            wait_for(lambda: list((queue_dir / "failed").iterdir()))
            assert queued(server) == []
            (kept,) = list((queue_dir / "failed").iterdir())
            assert server.messages(LOCAL_ACCOUNT) == []
    assert sink.received == []  # no report went anywhere
    header = json.loads(kept.read_bytes().split(b"\n", 1)[0])
    assert (header["from"], header["to"]) == ("", [REMOTE])


def test_remote_sender_gets_its_report_relayed_from_null_sender(tmp_path: Path) -> None:
    with smarthost("550 5.7.1 relaying denied") as (sink, port):
        with queue_server(tmp_path, relay_settings(port)) as server:
            envelope = Envelope("passerby@example.net", ("pass@example.org", REMOTE))
            _queue_directly(server, envelope, b"Subject: forwarded\n\nx\n")
            wait_for(lambda: len(sink.received) == 2)
            wait_for(lambda: not queued(server))
    original, report = sink.received
    assert original.recipients == ["pass@example.org"]
    assert report.sender == "<>"  # aiosmtpd records MAIL FROM:<> as "<>"
    assert report.recipients == ["passerby@example.net"]
    _, recipient = delivery_status(parse(report.content))
    assert recipient["Final-Recipient"] == f"rfc822; {REMOTE}"
    assert recipient["Status"] == "5.7.1"


def test_report_that_cannot_be_relayed_is_not_bounced_again(tmp_path: Path) -> None:
    with smarthost("550 5.1.1 no such user") as (sink, port):
        with queue_server(tmp_path, relay_settings(port)) as server:
            queue_dir = server.config.queue_dir
            _queue_directly(server, Envelope("gone@example.net", (REMOTE,)), b"\nx\n")
            # The report to gone@ is refused too: it lands in failed/, and nothing loops.
            wait_for(lambda: list((queue_dir / "failed").iterdir()))
            time.sleep(0.5)
            assert queued(server) == []
            assert len(list((queue_dir / "failed").iterdir())) == 1
    assert sink.received == []


def test_a_reloaded_max_lifetime_applies_to_queued_mail(tmp_path: Path) -> None:
    smtp_port = free_port()
    with smarthost("451 4.3.0 greylisted") as (sink, port):
        settings = base_settings(
            tmp_path, [{**SMTP_SUBMISSION, "port": smtp_port}], relay_settings(port)
        )
        write_passwd(Path(settings["passwd_file"]), ACCOUNTS)
        config = write_config(tmp_path / "seikyou.toml", settings)
        with serve_subprocess(tmp_path, config, expect_lines=1) as process:
            submit_to(smtp_port, tmp_path / "data" / "tls" / "cert.pem", [REMOTE])
            wait_for(lambda: sink.sessions >= 2)  # deferred, well inside 5 days
            mail_dir = tmp_path / "data" / "mail" / LOCAL_ACCOUNT / "new"
            assert not mail_dir.exists() or not any(mail_dir.iterdir())
            settings["queue"] = {"max_lifetime": 0.1}
            write_config(config, settings)
            process.send_signal(signal.SIGHUP)
            wait_for(lambda: mail_dir.is_dir() and any(mail_dir.iterdir()))
            (bounce,) = mail_dir.iterdir()
            _, recipient = delivery_status(parse(bounce.read_bytes()))
    assert recipient["Status"] == "4.4.7"
