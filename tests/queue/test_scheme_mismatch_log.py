"""The login line says when the stored scheme cannot answer the mechanism; the client
hears the same as for a wrong password."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.serverkit import (
    POP3,
    SMTP_SUBMISSION,
    RunningServer,
    base_settings,
    running_server,
    write_passwd,
)

import seikyou_auth

CRYPT_USER, PLAIN_USER, PASSWORD = "ma10003c", "ma10001a", "usagi-dash"
REASON = "reason=stored-scheme-cannot-answer scheme=SHA512-CRYPT"
SETTINGS = {"smtp": {"cleartext_auth": "always"}, "pop3": {"cleartext_auth": "always"}}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    passwd = Path(base_settings(tmp_path, [])["passwd_file"])
    write_passwd(passwd, {CRYPT_USER: PASSWORD}, "SHA512-CRYPT")
    plain = seikyou_auth.hash_password(PASSWORD.encode(), "PLAIN")
    with passwd.open("a") as out:
        out.write(f"{PLAIN_USER}:{plain}:1000:1000::/home/{PLAIN_USER}::\n")
    with running_server(tmp_path, [SMTP_SUBMISSION, POP3], SETTINGS) as running:
        yield running


def _cram_md5(port: int, user: str, password: str) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.example")
        code, challenge = client.docmd("AUTH", "CRAM-MD5")
        assert code == 334
        nonce = base64.b64decode(challenge)
        digest = hmac.new(password.encode(), nonce, hashlib.md5).hexdigest()
        answer = base64.b64encode(f"{user} {digest}".encode()).decode()
        return client.docmd(answer)[0]


def _apop(port: int, user: str, password: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        greeting = reader.readline()
        timestamp = re.search(rb"<[^>]+>", greeting)
        assert timestamp is not None
        digest = hashlib.md5(timestamp.group(0) + password.encode()).hexdigest()
        sock.sendall(f"APOP {user} {digest}\r\n".encode())
        return reader.readline()


def _login_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "seikyou_auth.login"]


def test_cram_md5_against_a_crypt_account(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "seikyou_auth.login")
    port = server.port("smtp")
    right = _cram_md5(port, f"{CRYPT_USER}@seikyou.ne.jp", PASSWORD)
    wrong_on_plain = _cram_md5(port, PLAIN_USER, "not-it")
    unknown = _cram_md5(port, "nobody", PASSWORD)
    assert right == wrong_on_plain == unknown == 535  # the client cannot tell them apart
    crypt_line, plain_line, unknown_line = _login_lines(caplog)
    assert "result=failed mechanism=CRAM-MD5" in crypt_line and REASON in crypt_line
    assert "reason=" not in plain_line and "reason=" not in unknown_line
    assert _cram_md5(port, PLAIN_USER, PASSWORD) == 235  # a PLAIN account can do CRAM-MD5


def test_apop_against_a_crypt_account(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "seikyou_auth.login")
    port = server.port("pop3")
    right = _apop(port, CRYPT_USER, PASSWORD)
    wrong_on_plain = _apop(port, PLAIN_USER, "not-it")
    assert right == wrong_on_plain
    assert right.startswith(b"-ERR")
    crypt_line, plain_line = _login_lines(caplog)
    assert "result=failed mechanism=APOP" in crypt_line and REASON in crypt_line
    assert "reason=" not in plain_line
    assert _apop(port, PLAIN_USER, PASSWORD).startswith(b"+OK")
