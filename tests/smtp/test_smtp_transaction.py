"""MAIL/RCPT/DATA rules per role, every reply code and limit, over raw sockets."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from pathlib import Path

import pytest
from support.serverkit import SMTP_MX, SMTP_SUBMISSION, RunningServer, running_server
from support.smtp_wire import ACCOUNT, ACCOUNTS, ADDRESS, OTHER_ACCOUNT, Wire, client_tls_context

from seikyou_auth.accounts import Account


def _files(server: RunningServer, account: str, sub: str) -> list[str]:
    directory = server.maildir(account) / sub
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def test_mx_delivers_locally_with_a_received_header(server: RunningServer, mx_port: int) -> None:
    with Wire(mx_port) as wire:
        assert wire.greeting[0] == 220
        wire.ehlo("sender.example.org")
        assert wire.command("MAIL FROM:<someone@example.org>")[0] == 250
        assert wire.command(f"RCPT TO:<{ADDRESS.upper()}>")[0] == 250
        assert wire.command("DATA")[0] == 354
        code, text = wire.command(b"Subject: in\r\n\r\n..leading dot\r\n.")
        assert code == 250 and text.startswith("2.0.0 Ok: queued as ")
        assert wire.command("QUIT") == (221, "2.0.0 Bye")
    (message,) = server.messages(ACCOUNT)
    header, _, body = message.partition(b"\nSubject: in\n")
    assert header.startswith(b"Received: from sender.example.org ([127.0.0.1])")
    assert b"with ESMTP id " in header and b"for <MA10001A@SEIKYOU.NE.JP>;" in header
    assert b"authenticated" not in header
    assert body == b"\n.leading dot\n"  # dot-unstuffed, LF line ends as Maildir expects
    assert _files(server, ACCOUNT, "tmp") == []


def test_mx_over_starttls_is_esmtps(server: RunningServer, mx_port: int) -> None:
    with Wire(mx_port) as wire:
        wire.ehlo()
        wire.starttls()
        wire.ehlo()
        wire.command("MAIL FROM:<>")
        wire.command(f"RCPT TO:<{ADDRESS}>")
        wire.command("DATA")
        assert wire.command(b"x\r\n.")[0] == 250
    (message,) = server.messages(ACCOUNT)
    assert b"with ESMTPS id" in message


def test_helo_is_plain_smtp(server: RunningServer, mx_port: int) -> None:
    with Wire(mx_port) as wire:
        assert wire.command("HELO old.example") == (250, server.config.hostname)
        wire.command("MAIL FROM:<a@example.org>")
        wire.command(f"RCPT TO:<{ADDRESS}>")
        wire.command("DATA")
        assert wire.command(b"x\r\n.")[0] == 250
    assert b"with SMTP id" in server.messages(ACCOUNT)[0]


def test_mx_refuses_relay_and_unknown_users(server: RunningServer, mx_port: int) -> None:
    with Wire(mx_port) as wire:
        wire.ehlo()
        wire.command("MAIL FROM:<a@example.org>")
        code, text = wire.command("RCPT TO:<friend@example.com>")
        assert code == 554 and text.startswith("5.7.1 Relay access denied")
        assert "587" in text and "465" in text and "authentication" in text
        assert wire.command("RCPT TO:<nobody@seikyou.ne.jp>") == (
            550,
            "5.1.1 Recipient address rejected: user unknown",
        )
        assert wire.command("RCPT TO:<postmaster>")[0] == 550  # no such account here
        assert wire.command("DATA") == (503, "5.5.1 Need RCPT before DATA")


def test_submission_requires_auth_and_owned_sender(
    server: RunningServer, submission_port: int
) -> None:
    with Wire(submission_port) as wire:
        wire.ehlo()
        assert wire.command(f"MAIL FROM:<{ADDRESS}>") == (
            530,
            "5.7.0 Authentication required: submit mail after AUTH",
        )
        wire.login()
        code, text = wire.command(f"MAIL FROM:<{OTHER_ACCOUNT}@seikyou.ne.jp>")
        assert (code, text[:5]) == (553, "5.7.1")
        assert wire.command("MAIL FROM:<>")[0] == 553
        assert wire.command(f"MAIL FROM:<{ADDRESS.upper()}> BODY=8BITMIME")[0] == 250
        assert wire.command(f"RCPT TO:<{OTHER_ACCOUNT}@seikyou.ne.jp>")[0] == 250
        assert wire.command("RCPT TO:<friend@example.com>")[0] == 250
        assert wire.command("RCPT TO:<nobody@seikyou.ne.jp>")[0] == 550
        assert wire.command("DATA")[0] == 354
        assert (
            wire.command("Subject: caf\u00e9\r\n\r\n\u3053\u3093\u306b\u3061\u306f\r\n.".encode())[
                0
            ]
            == 250
        )
    (local,) = server.messages(OTHER_ACCOUNT)
    assert "こんにちは".encode() in local  # 8-bit body kept intact
    (queued,) = sorted((server.config.queue_dir / "new").iterdir())
    envelope, _, message = queued.read_bytes().partition(b"\n")
    assert b'"to": ["friend@example.com"]' in envelope and b'"8bit": true' in envelope
    assert message == local


def test_sender_login_check_can_be_switched_off(tmp_path: Path) -> None:
    settings = {"smtp": {"sender_login_check": False}}
    with running_server(tmp_path, [SMTP_SUBMISSION], settings, ACCOUNTS) as server:
        with Wire(server.port("smtp")) as wire:
            wire.ehlo()
            wire.login()
            assert wire.command("MAIL FROM:<alias@example.org>")[0] == 250


def test_sequence_errors_are_503(mx_port: int) -> None:
    with Wire(mx_port) as wire:
        assert wire.command("MAIL FROM:<a@example.org>") == (503, "5.5.1 Send EHLO or HELO first")
        wire.ehlo()
        assert wire.command(f"RCPT TO:<{ADDRESS}>") == (503, "5.5.1 Need MAIL before RCPT")
        assert wire.command("DATA") == (503, "5.5.1 Need MAIL before RCPT")
        wire.command("MAIL FROM:<a@example.org>")
        assert wire.command("MAIL FROM:<a@example.org>") == (503, "5.5.1 Nested MAIL command")
        assert wire.command("RSET") == (250, "2.0.0 Ok")
        assert wire.command(f"RCPT TO:<{ADDRESS}>")[0] == 503


def test_simple_commands(mx_port: int) -> None:
    with Wire(mx_port) as wire:
        assert wire.command("NOOP") == (250, "2.0.0 Ok")
        assert wire.command(f"VRFY {ACCOUNT}")[0] == 252
        assert wire.command("VRFY")[0] == 501
        assert wire.command("EXPN staff")[0] == 502
        assert wire.command("HELP")[0] == 214
        assert wire.command("EHLO")[0] == 501
        assert wire.command("BDAT 10 LAST") == (500, "5.5.2 Command not recognized")
        assert wire.command("STARTTLS now")[0] == 501
        assert wire.command("QUIT")[0] == 221
        assert wire.closed_by_server()


def test_syntax_errors_in_paths_and_parameters(server: RunningServer, mx_port: int) -> None:
    with Wire(mx_port) as wire:
        wire.ehlo()
        assert wire.command("MAIL FROM:a@example.org")[0] == 501
        assert wire.command("MAIL TO:<a@example.org>")[0] == 501
        assert wire.command("MAIL FROM:<a b@example.org>")[0] == 501
        assert wire.command("MAIL FROM:<a@example.org> NOTIFY=NEVER")[0] == 555
        assert wire.command("MAIL FROM:<a@example.org>")[0] == 250
        assert wire.command("RCPT TO:<>")[0] == 501
        assert wire.command(f"RCPT TO:<{ADDRESS}> NOTIFY=NEVER")[0] == 555


def test_pipelining_answers_in_order(server: RunningServer, mx_port: int) -> None:
    with Wire(mx_port) as wire:
        wire.ehlo()
        wire.send(
            "MAIL FROM:<a@example.org>\r\n"
            f"RCPT TO:<{ADDRESS}>\r\n"
            "RCPT TO:<nobody@seikyou.ne.jp>\r\n"
            f"RCPT TO:<{OTHER_ACCOUNT}@seikyou.ne.jp>\r\n"
            "DATA\r\n"
        )
        codes = [wire.reply()[0] for _ in range(5)]
        assert codes == [250, 250, 550, 250, 354]
        wire.send(b"pipelined\r\n.\r\nRSET\r\nQUIT\r\n")
        assert [wire.reply()[0] for _ in range(3)] == [250, 250, 221]
    assert len(server.messages(ACCOUNT)) == len(server.messages(OTHER_ACCOUNT)) == 1


@pytest.mark.parametrize("verb", ["EHLO client.example", "HELO client.example", "NOOP", "VRFY x"])
def test_commands_pipelined_behind_a_group_ender_disconnect_a_client_not_logged_in(
    server: RunningServer, mx_port: int, verb: str
) -> None:
    with Wire(mx_port) as wire:
        wire.send(f"{verb}\r\nMAIL FROM:<a@example.org>\r\n")
        wire.reply()  # the command itself is answered
        assert wire.reply() == (554, ["5.5.0 Error: SMTP protocol synchronization"])
        assert wire.closed_by_server()


def test_size_limit_in_mail_and_data(tmp_path: Path) -> None:
    settings = {"smtp": {"max_message_size": 1000}}
    with running_server(tmp_path, [SMTP_MX], settings, ACCOUNTS) as server:
        with Wire(server.port("smtp")) as wire:
            assert "SIZE 1000" in wire.ehlo()
            assert wire.command("MAIL FROM:<a@example.org> SIZE=1001") == (
                552,
                "5.3.4 Message size exceeds fixed limit",
            )
            wire.command("MAIL FROM:<a@example.org> SIZE=900")
            wire.command(f"RCPT TO:<{ADDRESS}>")
            wire.command("DATA")
            wire.send(b"".join(b"y" * 98 + b"\r\n" for _ in range(11)))
            assert wire.command(".")[0] == 552
            # The session is still usable; an exactly-fitting message is accepted.
            wire.command("MAIL FROM:<a@example.org>")
            wire.command(f"RCPT TO:<{ADDRESS}>")
            wire.command("DATA")
            wire.send(b"".join(b"z" * 98 + b"\r\n" for _ in range(10)))
            assert wire.command(".")[0] == 250
        (message,) = server.messages(ACCOUNT)
        assert b"z" * 98 in message and b"y" not in message.split(b"\n", 5)[-1]


def test_postmaster_reaches_the_configured_account(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # RFC 5321 4.5.1: <postmaster> and postmaster@domain must be deliverable.
    settings = {"smtp": {"postmaster": OTHER_ACCOUNT}}
    with running_server(tmp_path, [SMTP_MX], settings, ACCOUNTS) as server:
        with Wire(server.port("smtp")) as wire:
            wire.ehlo()
            wire.command("MAIL FROM:<a@example.org>")
            assert wire.command("RCPT TO:<Postmaster>")[0] == 250
            assert wire.command("RCPT TO:<postmaster@seikyou.ne.jp>")[0] == 250
            wire.command("DATA")
            wire.send(b"Subject: abuse report\r\n\r\nhello\r\n")
            assert wire.command(".")[0] == 250
        (message,) = server.messages(OTHER_ACCOUNT)  # both names are one mailbox: one copy
        assert message.endswith(b"Subject: abuse report\n\nhello\n")
        assert server.messages(ACCOUNT) == []
    with running_server(tmp_path / "unset", [SMTP_MX], {}, ACCOUNTS) as server:
        with Wire(server.port("smtp")) as wire, caplog.at_level(logging.WARNING):
            wire.ehlo()
            wire.command("MAIL FROM:<a@example.org>")
            assert wire.command("RCPT TO:<postmaster>")[0] == 550
    assert "[smtp] postmaster" in caplog.text


def test_line_limits(server: RunningServer, mx_port: int) -> None:
    with Wire(mx_port) as wire:
        wire.ehlo()
        # 512 octets including CRLF is the longest command line.
        assert wire.command("NOOP " + "x" * 505)[0] == 250
        assert wire.command("NOOP " + "x" * 506) == (500, "5.5.2 Line too long")
        assert wire.command(b"X" * 100_000) == (500, "5.5.2 Line too long")
        wire.command("MAIL FROM:<a@example.org>")
        wire.command(f"RCPT TO:<{ADDRESS}>")
        wire.command("DATA")
        wire.send(b"a" * 998 + b"\r\n" + b"b" * 999 + b"\r\n")
        code, text = wire.command(".")
        assert code == 500 and "1000 octets" in text
        wire.command("MAIL FROM:<a@example.org>")
        wire.command(f"RCPT TO:<{ADDRESS}>")
        wire.command("DATA")
        wire.send(b"a" * 998 + b"\r\n")
        assert wire.command(".")[0] == 250
    assert len(server.messages(ACCOUNT)) == 1


def test_garbage_and_binary_then_too_many_errors(tmp_path: Path) -> None:
    settings = {"limits": {"max_bad_commands": 5}}
    with running_server(tmp_path, [SMTP_MX], settings, ACCOUNTS) as server:
        with Wire(server.port("smtp")) as wire:
            assert wire.command(b"\x00\xff\xfe\x01garbage")[0] == 500
            assert wire.command(b"\x16\x03\x01\x02\x00\x01\x00")[0] == 500  # a TLS hello
            assert wire.command("EHLO")[0] == 501
            assert wire.command("MAIL FROM:<x@y.z>")[0] == 503
            assert wire.command(b"\r")[0] == 500
            assert wire.reply() == (421, ["4.7.0 Too many errors, closing connection"])
            assert wire.closed_by_server()
        with Wire(server.port("smtp")) as wire:  # the server itself is fine
            assert wire.command(bytes(range(1, 256)).replace(b"\n", b""))[0] == 500
            assert wire.command("NOOP")[0] == 250


def test_cleartext_to_the_implicit_tls_port_is_dropped(
    server: RunningServer, submissions_port: int
) -> None:
    with socket.create_connection(("127.0.0.1", submissions_port), timeout=10) as sock:
        sock.sendall(b"EHLO cleartext.example\r\n")
        assert sock.recv(1024) == b""  # the TLS handshake fails; no SMTP reply in cleartext
    with Wire(submissions_port, implicit_tls=True) as wire:
        assert wire.greeting[0] == 220


def test_idle_timeout(tmp_path: Path) -> None:
    settings = {"limits": {"idle_timeout": 0.3}}
    with running_server(tmp_path, [SMTP_MX], settings, ACCOUNTS) as server:
        with Wire(server.port("smtp")) as wire:
            assert wire.reply() == (421, ["4.4.2 Idle timeout, closing connection"])
            assert wire.closed_by_server()


def test_idle_timeout_in_the_middle_of_data_stores_nothing(tmp_path: Path) -> None:
    settings = {"limits": {"idle_timeout": 0.5}}
    with running_server(tmp_path, [SMTP_MX], settings, ACCOUNTS) as server:
        with Wire(server.port("smtp")) as wire:
            wire.ehlo()
            time.sleep(0.3)  # activity resets the clock: 0.3 + 0.3 s is not idle
            wire.command("MAIL FROM:<a@example.org>")
            time.sleep(0.3)
            wire.command(f"RCPT TO:<{ADDRESS}>")
            wire.command("DATA")
            wire.send(b"Subject: stalled\r\n\r\nhalf a message\r\n")
            assert wire.reply() == (421, ["4.4.2 Idle timeout, closing connection"])
            assert wire.closed_by_server()
        assert server.messages(ACCOUNT) == []
        assert _files(server, ACCOUNT, "tmp") == []


def test_connection_cap_per_address(tmp_path: Path) -> None:
    settings = {"limits": {"max_connections_per_address": 2}}
    with running_server(tmp_path, [SMTP_MX], settings, ACCOUNTS) as server:
        port = server.port("smtp")
        with Wire(port) as first, Wire(port) as second:
            assert first.greeting[0] == second.greeting[0] == 220
            with Wire(port) as third:
                assert third.greeting == (
                    421,
                    ["4.7.0 Too many connections from your address, try again later"],
                )
            with Wire(port, source="127.0.0.3") as elsewhere:
                assert elsewhere.greeting[0] == 220
        with Wire(port) as again:
            assert again.greeting[0] == 220


def test_disconnect_mid_data_leaves_nothing(server: RunningServer, mx_port: int) -> None:
    with Wire(mx_port) as wire:
        wire.ehlo()
        wire.command("MAIL FROM:<a@example.org>")
        wire.command(f"RCPT TO:<{ADDRESS}>")
        wire.command("DATA")
        wire.send(b"Subject: cut\r\n\r\n" + b"partial line\r\n" * 1000 + b"no end")
        wire.sock.shutdown(socket.SHUT_RDWR)
    with Wire(mx_port) as wire:  # a later session proves the first one was handled
        assert wire.command("NOOP")[0] == 250
    assert server.messages(ACCOUNT) == []
    assert _files(server, ACCOUNT, "tmp") == []


def test_starttls_discards_cleartext_pipelined_after_it(
    server: RunningServer, submission_port: int
) -> None:
    with Wire(submission_port) as wire:
        wire.ehlo()
        # A man in the middle appends a command to the cleartext STARTTLS line.
        wire.send("STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n")
        assert wire.reply()[0] == 220
        wire.sock = client_tls_context().wrap_socket(wire.sock)
        # The injected MAIL was not executed inside the TLS session.
        assert wire.command("RCPT TO:<x@seikyou.ne.jp>")[0] == 503
        assert wire.command("STARTTLS") == (503, "5.5.1 TLS already active")


def test_starttls_not_on_implicit_or_plain_listener(tmp_path: Path) -> None:
    listener = {**SMTP_MX, "tls": "none"}
    with running_server(tmp_path, [listener], {}, ACCOUNTS) as server:
        with Wire(server.port("smtp")) as wire:
            assert "STARTTLS" not in wire.ehlo()
            assert wire.command("STARTTLS")[0] == 502


def test_store_unavailable_on_rcpt_is_451(server: RunningServer, mx_port: int) -> None:
    passwd = server.config.passwd_file
    passwd.unlink()
    passwd.mkdir()
    with Wire(mx_port) as wire:
        wire.ehlo()
        wire.command("MAIL FROM:<a@example.org>")
        assert wire.command(f"RCPT TO:<{ADDRESS}>")[0] == 451


def test_delivery_failure_is_451_not_250(server: RunningServer, mx_port: int) -> None:
    maildir = server.maildir(ACCOUNT)
    maildir.parent.mkdir(parents=True, exist_ok=True)
    maildir.write_text("not a directory")  # delivery cannot succeed
    with Wire(mx_port) as wire:
        wire.ehlo()
        wire.command("MAIL FROM:<a@example.org>")
        wire.command(f"RCPT TO:<{ADDRESS}>")
        wire.command("DATA")
        assert wire.command(b"x\r\n.")[0] == 451


@pytest.mark.parametrize("count", [100, 101])
def test_recipient_limit(server: RunningServer, mx_port: int, count: int) -> None:
    with Wire(mx_port) as wire:
        wire.ehlo()
        wire.command("MAIL FROM:<a@example.org>")
        wire.send("".join(f"RCPT TO:<{ADDRESS}>\r\n" for _ in range(count)))
        codes = [wire.reply()[0] for _ in range(count)]
    assert codes[:100] == [250] * 100
    assert codes[100:] == [452] * (count - 100)


def test_shutdown_lets_data_finish_then_says_421(server: RunningServer, mx_port: int) -> None:
    with Wire(mx_port) as busy, Wire(mx_port) as idle:
        busy.ehlo()
        busy.command("MAIL FROM:<a@example.org>")
        busy.command(f"RCPT TO:<{ADDRESS}>")
        busy.command("DATA")
        busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
        stopping = asyncio.run_coroutine_threadsafe(server.app.stop(), server.loop)
        assert idle.reply() == (421, ["4.3.2 Service shutting down, try again later"])
        time.sleep(0.2)
        busy.send(b"second half\r\n.\r\n")
        assert busy.reply()[0] == 250
        assert busy.reply()[0] == 421
        stopping.result(10)
    (message,) = server.messages(ACCOUNT)
    assert message.endswith(b"first half\nsecond half\n")


def test_shutdown_cuts_off_a_stalled_data_after_the_grace_period(
    server: RunningServer, mx_port: int
) -> None:
    with Wire(mx_port) as stalled:
        stalled.ehlo()
        stalled.command("MAIL FROM:<a@example.org>")
        stalled.command(f"RCPT TO:<{ADDRESS}>")
        stalled.command("DATA")
        stalled.send(b"Subject: never finished\r\n\r\n")
        started = time.monotonic()
        stopping = asyncio.run_coroutine_threadsafe(server.app.stop(), server.loop)
        assert stalled.reply() == (421, ["4.3.2 Service shutting down, try again later"])
        waited = time.monotonic() - started
        stopping.result(10)
    assert server.config.limits.shutdown_grace <= waited < 10
    assert server.messages(ACCOUNT) == []
    assert _files(server, ACCOUNT, "tmp") == []


def _start_data(wire: Wire, *recipients: str) -> None:
    wire.ehlo()
    wire.command("MAIL FROM:<a@example.org>")
    for recipient in recipients or (ADDRESS,):
        assert wire.command(f"RCPT TO:<{recipient}>")[0] == 250
    assert wire.command("DATA")[0] == 354


BARE_LINE_END = (550, ["5.5.2 Message contains a bare CR or LF (RFC 5321 2.3.8); not accepted"])


def test_lf_dot_lf_does_not_end_data_so_nothing_is_smuggled(
    server: RunningServer, mx_port: int
) -> None:
    with Wire(mx_port) as wire:
        _start_data(wire)
        wire.send(
            b"Subject: one\r\n\r\nbody\n.\n"
            b"MAIL FROM:<boss@seikyou.ne.jp>\r\n"
            b"RCPT TO:<ma10001a@seikyou.ne.jp>\r\n"
            b"DATA\r\n"
            b"Subject: smuggled\r\n\r\nhi\r\n.\r\n"
        )
        assert wire.reply() == BARE_LINE_END
        assert wire.command("NOOP") == (250, "2.0.0 Ok")  # no second reply was waiting
        assert wire.command("RCPT TO:<ma10001a@seikyou.ne.jp>")[0] == 503  # no transaction
    assert server.messages(ACCOUNT) == []


@pytest.mark.parametrize(
    "data",
    [
        b"a\n.\r\nMAIL FROM:<x@example.org>\r\n.\r\n",  # the dot follows a bare LF
        b"a\r\n.\nb\r\n.\r\n",  # the dot line itself ends in a bare LF
        b"a\r\nb\nc\r\n.\r\n",
        b"a\r.\r\nMAIL FROM:<x@example.org>\r\n.\r\n",  # CR.CR: the next hop may end there
        b"a\rb\r\n.\r\n",  # a bare CR inside a line
        b"a\r\n\r.\r\n.\r\n",  # a line that is only CR and a dot
    ],
)
def test_a_bare_lf_or_cr_anywhere_refuses_the_message(
    server: RunningServer, mx_port: int, data: bytes
) -> None:
    with Wire(mx_port) as wire:
        _start_data(wire)
        wire.send(data)
        assert wire.reply() == BARE_LINE_END
        assert wire.command("NOOP") == (250, "2.0.0 Ok")
    assert server.messages(ACCOUNT) == []


def test_overlong_line_ending_in_bare_lf_does_not_end_data_at_the_next_dot(
    server: RunningServer, mx_port: int
) -> None:
    with Wire(mx_port) as wire:
        _start_data(wire)
        wire.send(b"x" * 2000 + b"\n.\r\nQUIT\r\n.\r\n")
        assert wire.reply()[0] == 500
        assert wire.command("NOOP") == (250, "2.0.0 Ok")
    assert server.messages(ACCOUNT) == []


def test_crlf_split_across_writes_is_still_crlf(server: RunningServer, mx_port: int) -> None:
    with Wire(mx_port) as wire:
        _start_data(wire)
        wire.send(b"Subject: split\r")
        time.sleep(0.1)
        wire.send(b"\n\r\nbody\r")
        time.sleep(0.1)
        wire.send(b"\n.\r")
        time.sleep(0.1)
        wire.send(b"\n")
        assert wire.reply()[0] == 250
    (message,) = server.messages(ACCOUNT)
    assert message.endswith(b"Subject: split\n\nbody\n")


def test_commands_ending_in_bare_lf_are_still_accepted(server: RunningServer, mx_port: int) -> None:
    with Wire(mx_port) as wire:
        wire.send(b"EHLO client.example\n")
        assert wire.reply()[0] == 250
        wire.send(b"MAIL FROM:<a@example.org>\n")
        assert wire.reply()[0] == 250
        wire.send(f"RCPT TO:<{ADDRESS}>\nDATA\n".encode())
        assert wire.reply()[0] == 250
        assert wire.reply()[0] == 354
        assert wire.command(b"x\r\n.")[0] == 250
    assert len(server.messages(ACCOUNT)) == 1


def test_account_without_a_usable_maildir_name_is_refused_at_rcpt(
    server: RunningServer, mx_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def lookup(username: str) -> Account | None:
        return Account("a/b", "{PLAIN}x") if username.startswith("a/b@") else None

    monkeypatch.setattr(server.app.store, "lookup", lookup)
    with Wire(mx_port) as wire:
        wire.ehlo()
        wire.command("MAIL FROM:<a@example.org>")
        assert wire.command("RCPT TO:<a/b@seikyou.ne.jp>") == (
            550,
            "5.1.1 Recipient address rejected: user unknown",
        )
    assert not (server.config.mail_dir / "a").exists()


def test_failed_copy_for_one_recipient_leaves_no_copy_for_the_others(
    server: RunningServer, mx_port: int
) -> None:
    blocked = server.maildir(OTHER_ACCOUNT)
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("not a directory")
    with Wire(mx_port) as wire:
        _start_data(wire, ADDRESS, f"{OTHER_ACCOUNT}@seikyou.ne.jp")
        assert wire.command(b"x\r\n.")[0] == 451
    assert server.messages(ACCOUNT) == []
    assert _files(server, ACCOUNT, "tmp") == []


def test_unusable_maildir_name_at_data_is_451_not_a_crash(
    server: RunningServer, mx_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(account: str) -> Path:
        raise ValueError("not a usable maildir name")

    with Wire(mx_port) as wire:
        _start_data(wire, ADDRESS, f"{OTHER_ACCOUNT}@seikyou.ne.jp")
        monkeypatch.setattr(server.app.maildirs, "path", refuse)
        assert wire.command(b"x\r\n.")[0] == 451
        assert wire.command("NOOP") == (250, "2.0.0 Ok")
    monkeypatch.undo()
    assert server.messages(ACCOUNT) == []
    assert server.messages(OTHER_ACCOUNT) == []
