"""examples/twisted_pop3.py: Twisted POP3 with the seikyou-auth checker, driven by poplib and
curl over real implicit TLS (POP3S)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import poplib
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd_support import (
    CRAM_PASSWORD,
    CRAM_USER,
    CRYPT_PASSWORD,
    CRYPT_USER,
    DOMAIN,
    PLAIN_PASSWORD,
    PLAIN_USER,
    TlsFiles,
)
from twisted_support import POP3, SERVER_NAME, RunningExample, run_example

ADDRESS = f"{PLAIN_USER}@{DOMAIN}"
CORE_TIMESTAMP = re.compile(rb"<\d{20}\.\d+@" + re.escape(SERVER_NAME.encode()) + rb">")
CURL_LOGIN_DENIED = 67  # curl: "the user name, password, or similar was not accepted"


@pytest.fixture
def server(passwd_file: Path, tls_files: TlsFiles, mail_root: Path) -> Iterator[RunningExample]:
    with run_example(POP3, passwd_file, tls_files.cert, tls_files.key, mail_root) as running:
        yield running


@pytest.fixture
def hashes_only_server(
    passwd_file: Path, tls_files: TlsFiles, mail_root: Path
) -> Iterator[RunningExample]:
    arguments = ("--hashes-only", passwd_file, tls_files.cert, tls_files.key, mail_root)
    with run_example(POP3, *arguments) as running:
        yield running


def connect(server: RunningExample, tls_files: TlsFiles) -> poplib.POP3_SSL:
    return poplib.POP3_SSL("127.0.0.1", server.port, context=tls_files.client_context(), timeout=30)


def first_message(client: poplib.POP3) -> bytes:
    _, lines, _ = client.retr(1)
    return b"\r\n".join(lines)


def test_user_pass_logs_in_and_retrieves(server: RunningExample, tls_files: TlsFiles) -> None:
    client = connect(server, tls_files)
    try:
        client.user(ADDRESS)
        assert client.pass_(PLAIN_PASSWORD).startswith(b"+OK")
        assert f"Subject: for {PLAIN_USER}".encode() in first_message(client)
    finally:
        client.quit()


def test_apop_with_the_core_timestamp(server: RunningExample, tls_files: TlsFiles) -> None:
    client = connect(server, tls_files)
    try:
        timestamp = re.search(rb"<[^>]*>", client.getwelcome())
        assert timestamp is not None
        # Twisted's own timestamp is smtp.messageid(): <time.random.pid@host>
        assert CORE_TIMESTAMP.fullmatch(timestamp.group()), client.getwelcome()
        assert client.apop(ADDRESS, PLAIN_PASSWORD).startswith(b"+OK")
        assert f"Subject: for {PLAIN_USER}".encode() in first_message(client)
    finally:
        client.quit()


def test_cram_md5_stored_account_logs_in_with_sasl_cram_md5(
    server: RunningExample, tls_files: TlsFiles
) -> None:
    client = connect(server, tls_files)
    try:
        assert "CRAM-MD5" in client.capa()["SASL"]
        reply = client._shortcmd("AUTH CRAM-MD5")  # poplib has no AUTH helper
        challenge = base64.b64decode(reply.removeprefix(b"+ "), validate=True)
        assert CORE_TIMESTAMP.fullmatch(challenge), challenge
        digest = hmac.new(CRAM_PASSWORD.encode(), challenge, hashlib.md5).hexdigest()
        answer = base64.b64encode(f"{CRAM_USER} {digest}".encode())
        assert client._shortcmd(answer.decode()).startswith(b"+OK")
        assert f"Subject: for {CRAM_USER}".encode() in first_message(client)
    finally:
        client.quit()


def test_apop_needs_a_plaintext_password(server: RunningExample, tls_files: TlsFiles) -> None:
    # {CRAM-MD5} state cannot answer APOP: refused even with the right password.
    client = connect(server, tls_files)
    try:
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
            client.apop(CRAM_USER, CRAM_PASSWORD)
    finally:
        client.quit()


def test_wrong_password_is_refused_after_the_delay(
    passwd_file: Path, tls_files: TlsFiles, mail_root: Path
) -> None:
    with run_example(POP3, passwd_file, tls_files.cert, tls_files.key, mail_root) as server:
        client = connect(server, tls_files)
        try:
            client.user(ADDRESS)
            started = time.monotonic()
            with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\] Authentication failed"):
                client.pass_("not-the-password")
            assert time.monotonic() - started >= 1.9, "the default failure delay starts at 2 s"
        finally:
            client.quit()
    assert "pop3 login result=failed mechanism=USER client=127.0.0.1 tls=yes" in server.log
    assert "not-the-password" not in server.log


def test_store_trouble_is_a_temporary_failure(
    passwd_file: Path, tls_files: TlsFiles, mail_root: Path
) -> None:
    with run_example(POP3, passwd_file, tls_files.cert, tls_files.key, mail_root) as server:
        with passwd_file.open("a", encoding="utf-8") as damaged:
            damaged.write("a line that is no passwd-file entry\n")
        client = connect(server, tls_files)
        try:
            with pytest.raises(poplib.error_proto, match=r"-ERR \[SYS/TEMP\]"):
                client.apop(ADDRESS, PLAIN_PASSWORD)
        finally:
            client.quit()
    assert "result=unavailable" in server.log


def test_hashes_only_offers_user_pass_alone(
    hashes_only_server: RunningExample, tls_files: TlsFiles
) -> None:
    client = connect(hashes_only_server, tls_files)
    try:
        assert b"<" not in client.getwelcome()
        assert "SASL" not in client.capa()
        with pytest.raises(poplib.error_proto):
            client.apop(ADDRESS, PLAIN_PASSWORD)
        client.user(CRYPT_USER)
        assert client.pass_(CRYPT_PASSWORD).startswith(b"+OK")
    finally:
        client.quit()


def curl(
    port: int, tls_files: TlsFiles, user: str, password: str, *options: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            "curl", "--silent", "--show-error", "--verbose",
            "--url", f"pop3s://127.0.0.1:{port}/1",
            "--cacert", str(tls_files.cert),
            "--user", f"{user}:{password}",
            *options,
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )  # fmt: skip


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@needs_curl
def test_curl_retrieves_with_apop(server: RunningExample, tls_files: TlsFiles) -> None:
    result = curl(server.port, tls_files, ADDRESS, PLAIN_PASSWORD, "--login-options", "AUTH=+APOP")
    assert result.returncode == 0, result.stderr
    assert b"> APOP " in result.stderr
    assert f"Subject: for {PLAIN_USER}".encode() in result.stdout


@needs_curl
def test_curl_retrieves_with_user_pass(
    hashes_only_server: RunningExample, tls_files: TlsFiles
) -> None:
    # curl prefers SASL, then APOP; it sends USER/PASS where neither is offered.
    result = curl(hashes_only_server.port, tls_files, ADDRESS, PLAIN_PASSWORD)
    assert result.returncode == 0, result.stderr
    assert b"> USER " in result.stderr
    assert f"Subject: for {PLAIN_USER}".encode() in result.stdout


@needs_curl
def test_curl_sees_the_wrong_password_refused(server: RunningExample, tls_files: TlsFiles) -> None:
    result = curl(
        server.port, tls_files, ADDRESS, "not-the-password", "--login-options", "AUTH=+APOP"
    )
    assert result.returncode == CURL_LOGIN_DENIED, result.stderr
    assert b"Subject:" not in result.stdout


def pipelined(server: RunningExample, tls_files: TlsFiles, commands: list[bytes]) -> list[bytes]:
    """Sends ``commands`` in one write; returns the greeting and one status line per command."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:
        context = tls_files.client_context()
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            reader = tls.makefile("rb")
            replies = [reader.readline()]
            tls.sendall(b"".join(command + b"\r\n" for command in commands))
            for command in commands:
                replies.append(reader.readline())
                if command == b"STAT" or not replies[-1].startswith(b"+OK"):
                    continue
                if command == b"LIST":  # multi-line: skip to the terminating dot
                    while reader.readline() != b".\r\n":
                        pass
    return [reply.rstrip(b"\r\n") for reply in replies]


def test_commands_pipelined_behind_a_login_are_answered_in_order(
    server: RunningExample, tls_files: TlsFiles
) -> None:
    commands = [f"USER {ADDRESS}".encode(), f"PASS {PLAIN_PASSWORD}".encode(), b"STAT", b"QUIT"]
    greeting, user, password, stat, quit_ = pipelined(server, tls_files, commands)
    assert greeting.startswith(b"+OK <")
    assert user.startswith(b"+OK")
    assert password == b"+OK Authentication succeeded"
    assert re.fullmatch(rb"\+OK 1 \d+", stat), stat
    assert quit_.startswith(b"+OK")


def test_commands_pipelined_behind_a_failed_login_stay_unauthenticated(
    server: RunningExample, tls_files: TlsFiles
) -> None:
    commands = [f"USER {ADDRESS}".encode(), b"PASS not-the-password", b"STAT", b"QUIT"]
    _, _, password, stat, quit_ = pipelined(server, tls_files, commands)
    assert password == b"-ERR [AUTH] Authentication failed"
    assert stat.startswith(b"-ERR")
    assert quit_.startswith(b"+OK")


def test_bad_commands_get_a_reply_and_no_traceback(
    server: RunningExample, tls_files: TlsFiles
) -> None:
    commands = [b"STAT", b"NOSUCHCOMMAND", f"USER {ADDRESS}".encode(), b"PASS", b"QUIT"]
    _, stat, unknown, _, empty_pass, quit_ = pipelined(server, tls_files, commands)
    assert stat == b"-ERR not authenticated yet: cannot do STAT"
    assert unknown.startswith(b"-ERR")
    assert empty_pass.startswith(b"-ERR")
    assert quit_.startswith(b"+OK")
    # run_example checks, once the server has stopped, that its log holds no traceback
