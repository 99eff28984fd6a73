"""POP3 at the line level: SASL (RFC 5034), every -ERR path, garbage, limits, STLS injection."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pop3_wire import RawPop3
from pop3kit import (
    APOP_PASSWORD,
    APOP_USER,
    CRYPT_PASSWORD,
    CRYPT_USER,
    OUTSIDE,
    Pop3Server,
    pop3_server,
)

from seikyou_auth.accounts import Account


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def cram_answer(challenge_line: bytes, user: str, password: str) -> bytes:
    assert challenge_line.startswith(b"+ ")
    challenge = base64.b64decode(challenge_line[2:], validate=True)
    digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
    return b64(f"{user} {digest}".encode())


def logged_in(client: RawPop3) -> bool:
    return client.command(b"STAT").startswith(b"+OK")


def test_bare_auth_lists_the_mechanisms_allowed_here(server: Pop3Server) -> None:
    with RawPop3(server.port()) as client:
        assert client.command(b"AUTH") == b"+OK Supported mechanisms follow"
        assert client.body() == [b"CRAM-MD5", b"PLAIN", b"LOGIN"]
    with RawPop3(server.port(address=OUTSIDE), address=OUTSIDE) as client:
        assert client.command(b"AUTH").startswith(b"+OK")
        assert client.body() == [b"CRAM-MD5"]


def test_auth_plain_initial_response_and_empty_challenge(server: Pop3Server) -> None:
    plain = b64(b"\0" + APOP_USER.encode() + b"\0" + APOP_PASSWORD.encode())
    with RawPop3(server.port()) as client:
        assert client.command(b"AUTH PLAIN " + plain).startswith(b"+OK Logged in")
        assert client.command(b"QUIT").startswith(b"+OK")
    with RawPop3(server.port()) as client:
        assert client.command(b"auth plain") == b"+ "
        assert client.command(plain).startswith(b"+OK")
        assert client.command(b"QUIT").startswith(b"+OK")
    with RawPop3(server.port()) as client:
        # "=" is the empty initial response (RFC 5034), which PLAIN rejects as malformed.
        assert client.command(b"AUTH PLAIN =") == b"-ERR [AUTH] Malformed authentication response"


def test_auth_login_and_cancel(server: Pop3Server) -> None:
    with RawPop3(server.port()) as client:
        assert client.command(b"AUTH LOGIN") == b"+ " + b64(b"Username:")
        assert client.command(b64(APOP_USER.encode())) == b"+ " + b64(b"Password:")
        assert client.command(b64(APOP_PASSWORD.encode())).startswith(b"+OK")
        assert client.command(b"QUIT").startswith(b"+OK")
    with RawPop3(server.port()) as client:
        assert client.command(b"AUTH LOGIN " + b64(APOP_USER.encode())).startswith(b"+ ")
        assert client.command(b"*") == b"-ERR Authentication cancelled"
        assert not logged_in(client)


def test_auth_cram_md5_and_scheme_rule(server: Pop3Server) -> None:
    with RawPop3(server.port()) as client:
        challenge = client.command(b"AUTH CRAM-MD5")
        assert client.command(cram_answer(challenge, APOP_USER, APOP_PASSWORD)).startswith(b"+OK")
        assert client.command(b"QUIT").startswith(b"+OK")
    with RawPop3(server.port()) as client:
        # CRAM-MD5 cannot verify a SHA512-CRYPT account: the ordinary failure, nothing more.
        challenge = client.command(b"AUTH CRAM-MD5")
        answer = cram_answer(challenge, CRYPT_USER, CRYPT_PASSWORD)
        assert client.command(answer) == b"-ERR [AUTH] Authentication failed"
    with RawPop3(server.port()) as client:
        challenge = client.command(b"AUTH CRAM-MD5")
        assert client.command(b"not base64!") == b"-ERR [AUTH] Malformed authentication response"
    with RawPop3(server.port()) as client:
        assert client.command(b"AUTH CRAM-MD5 " + b64(b"x")) == (
            b"-ERR [AUTH] Malformed authentication response"
        )


def test_auth_errors(server: Pop3Server) -> None:
    with RawPop3(server.port()) as client:
        assert client.command(b"AUTH DIGEST-MD5") == b"-ERR Unsupported authentication mechanism"
        challenge = client.command(b"AUTH CRAM-MD5")
        assert challenge.startswith(b"+ ")
        assert client.command(b"A" * 13000) == b"-ERR [AUTH] Malformed authentication response"
        # A long but legal response line is read as one line, not as commands.
        assert client.command(b"AUTH PLAIN") == b"+ "
        assert client.command(b"QUJD" * 3000) == b"-ERR [AUTH] Malformed authentication response"
        assert client.command(b"NOOP").startswith(b"-ERR Not logged in")


def test_every_transaction_error(server: Pop3Server) -> None:
    server.deliver(APOP_USER, b"Subject: x\n\nbody\n")
    with RawPop3(server.port()) as client:
        assert client.command(b"PASS secret") == b"-ERR No USER given"
    with RawPop3(server.port()) as client:
        assert client.command(b"USER " + APOP_USER.encode()) == b"+OK"
        assert client.command(b"PASS " + APOP_PASSWORD.encode()).startswith(b"+OK Logged in")
        count = int(client.command(b"STAT").split()[1])
        assert client.command(b"USER x").startswith(b"-ERR Already logged in")
        assert client.command(b"STLS").startswith(b"-ERR Already logged in")
        assert client.command(b"RETR 0") == b"-ERR No such message: 0"
        assert (
            client.command(f"RETR {count + 1}".encode())
            == f"-ERR No such message: {count + 1}".encode()
        )
        assert client.command(b"RETR x") == b"-ERR Invalid message number"
        assert client.command(b"TOP 1") == b"-ERR Usage: TOP message lines"
        assert client.command(b"LIST 99999999999") == b"-ERR Invalid message number"
        assert client.command(b"UIDL 0") == b"-ERR No such message: 0"
        assert client.command(b"NOOP") == b"+OK"
        assert client.command(f"LIST {count}".encode()).startswith(f"+OK {count} ".encode())
        assert client.command(b"QUIT").startswith(b"+OK Logging out, 0 messages deleted")


def test_garbage_and_overlong_lines_then_bad_command_limit(server: Pop3Server) -> None:
    with RawPop3(server.port()) as client:
        assert client.command(b"\xff\xfe garbage") == b"-ERR Unknown command"
        assert client.command(b"USER " + b"a" * 300) == b"-ERR Line too long"
        assert client.command(b"STAT") == b"-ERR Not logged in: command not valid in this state"
        limit = server.config.limits.max_bad_commands
        for _ in range(limit - 4):
            assert client.command(b"X" * 100_000) == b"-ERR Line too long"
        assert client.command(b"X" * 100_000) == b"-ERR Too many bad commands, closing connection"
        assert client.closed_by_server()


def test_a_megabyte_without_a_line_end_ends_the_session(server: Pop3Server) -> None:
    with RawPop3(server.port()) as client:
        with contextlib.suppress(ConnectionError):  # the server may hang up while we send
            client.send(b"X" * ((1 << 20) + (1 << 17)))
        assert client.closed_by_server()


def test_user_with_bad_utf8_and_missing_arguments(server: Pop3Server) -> None:
    with RawPop3(server.port()) as client:
        assert client.command(b"USER \xff") == b"-ERR Usage: USER name"
        assert client.command(b"USER") == b"-ERR Usage: USER name"
        assert client.command(b"APOP onlyname") == b"-ERR Usage: APOP name digest"
        assert client.command(b"QUIT") == b"+OK Bye"


def test_pipelined_commands_are_answered_in_order(server: Pop3Server) -> None:
    with RawPop3(server.port()) as client:
        client.send(
            b"USER " + APOP_USER.encode() + b"\r\nPASS " + APOP_PASSWORD.encode() + b"\r\n"
            b"STAT\r\nNOOP\r\nQUIT\r\n"
        )
        assert client.line() == b"+OK"
        assert client.line().startswith(b"+OK Logged in")
        assert client.line().startswith(b"+OK ")
        assert client.line() == b"+OK"
        assert client.line().startswith(b"+OK Logging out")


def test_stls_with_pipelined_cleartext_is_refused(server: Pop3Server) -> None:
    with RawPop3(server.port()) as client:
        client.send(b"STLS\r\nUSER injected\r\n")
        assert client.line() == b"-ERR Pipelined data after STLS, closing connection"
        assert client.closed_by_server()
    with RawPop3(server.port("pop3", "implicit"), context=server.client_context()) as client:
        assert client.command(b"STLS") == b"-ERR STLS not available on this connection"


def test_idle_timeout_and_unknown_account_apop(tmp_path: Path) -> None:
    with pop3_server(tmp_path, idle_timeout=0.5) as server, RawPop3(server.port()) as client:
        stamp = client.greeting.rsplit(b" ", 1)[1]
        digest = hashlib.md5(stamp + b"x").hexdigest()
        assert client.command(b"APOP nobody " + digest.encode()) == (
            b"-ERR [AUTH] Authentication failed"
        )
        time.sleep(0.8)
        assert client.line() == b"-ERR Disconnected for inactivity"
        assert client.closed_by_server()


def test_idle_timeout_inside_a_sasl_exchange(tmp_path: Path) -> None:
    with pop3_server(tmp_path, idle_timeout=0.5) as server, RawPop3(server.port()) as client:
        assert client.command(b"AUTH PLAIN") == b"+ "
        time.sleep(0.8)
        assert client.line() == b"-ERR Disconnected for inactivity"
        assert client.closed_by_server()


@pytest.fixture
def broken_store_server(tmp_path: Path) -> Iterator[Pop3Server]:
    with pop3_server(tmp_path) as server:
        yield server


def test_store_unavailable_is_sys_temp(broken_store_server: Pop3Server) -> None:
    server = broken_store_server
    passwd = server.config.passwd_file
    saved = passwd.read_bytes()
    passwd.unlink()
    passwd.mkdir()  # an unreadable passwd-file: the store answers StoreUnavailable
    try:
        with RawPop3(server.port()) as client:
            client.command(b"USER " + APOP_USER.encode())
            assert client.command(b"PASS x") == (
                b"-ERR [SYS/TEMP] Authentication service temporarily unavailable"
            )
            stamp = client.greeting.rsplit(b" ", 1)[1]
            digest = hashlib.md5(stamp + APOP_PASSWORD.encode()).hexdigest().encode()
            assert client.command(b"APOP " + APOP_USER.encode() + b" " + digest).startswith(
                b"-ERR [SYS/TEMP]"
            )
            assert client.command(b"AUTH PLAIN " + b64(b"\0a\0b")).startswith(b"-ERR [SYS/TEMP]")
    finally:
        shutil.rmtree(passwd)
        passwd.write_bytes(saved)


def test_connection_cap_per_address(tmp_path: Path) -> None:
    with pop3_server(tmp_path) as server:
        limit = server.config.limits.max_connections_per_address
        clients = [RawPop3(server.port()) for _ in range(limit)]
        try:
            with socket.create_connection(("127.0.0.1", server.port()), timeout=10) as extra:
                assert extra.recv(200).startswith(b"-ERR [SYS/TEMP] Too many connections")
        finally:
            for client in clients:
                client.close()


def test_one_log_line_per_login_attempt_and_no_secret(
    server: Pop3Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Wr0ng-Secret-Value"
    with RawPop3(server.port()) as client:
        client.command(b"USER " + APOP_USER.encode())
        assert client.command(b"PASS " + secret.encode()).startswith(b"-ERR [AUTH]")
        client.command(b"AUTH PLAIN " + b64(f"\0{APOP_USER}\0{secret}".encode()))
        assert client.command(b"AUTH LOGIN " + b64(APOP_USER.encode())).startswith(b"+ ")
        client.command(b64(secret.encode()))
        client.command(b"USER " + APOP_USER.encode())
        assert client.command(b"PASS " + APOP_PASSWORD.encode()).startswith(b"+OK")
        client.command(b"QUIT")
    logins = [record.getMessage() for record in caplog.records if " login " in record.getMessage()]
    assert len(logins) == 4, logins
    assert [line.split()[2] for line in logins] == ["result=failed"] * 3 + ["result=ok"]
    assert all(line.endswith(f'user="{APOP_USER}"') for line in logins)
    for text in (secret, APOP_PASSWORD, b64(secret.encode()).decode()):
        assert text not in caplog.text


def test_shutdown_says_sys_temp_to_connected_clients(tmp_path: Path) -> None:
    with pop3_server(tmp_path) as server:
        server.deliver(APOP_USER, b"Subject: kept\n\nbody\n")
        running = server.running
        with RawPop3(server.port()) as idle, RawPop3(server.port()) as user:
            user.command(b"USER " + APOP_USER.encode())
            assert user.command(b"PASS " + APOP_PASSWORD.encode()).startswith(b"+OK")
            assert user.command(b"DELE 1").startswith(b"+OK")
            stopping = asyncio.run_coroutine_threadsafe(running.app.stop(), running.loop)
            for client in (idle, user):
                assert client.line() == b"-ERR [SYS/TEMP] Server shutting down, try again later"
                assert client.closed_by_server()
            stopping.result(10)
        # No QUIT, so no UPDATE state: the message marked deleted is still there.
        assert len(os.listdir(server.maildir(APOP_USER) / "cur")) == 1


@pytest.mark.parametrize("name", ["a/b", "../evil", ".hidden"])
def test_account_without_a_usable_maildir_name_gets_a_clean_err(
    server: Pop3Server, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    async def lookup(username: str) -> Account | None:
        return Account(name, "{PLAIN}pw") if username == name else None

    monkeypatch.setattr(server.running.app.store, "lookup", lookup)
    with RawPop3(server.port()) as client:
        client.command(b"USER " + name.encode())
        assert client.command(b"PASS pw") == b"-ERR [SYS/TEMP] Mailbox cannot be opened"
        assert client.command(b"NOOP").startswith(b"-ERR")  # not logged in, still served
        assert client.command(b"QUIT").startswith(b"+OK")
    assert not (server.config.mail_dir.parent / "evil").exists()
    assert not (server.config.mail_dir / "a").exists()
