"""A broken passwd-file (a bad deploy) is a temporary failure in every protocol, never a 5xx that
bounces real users' mail or tells them their password is wrong; fixing the file ends it."""

from __future__ import annotations

import base64
import os
import poplib
import smtplib
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.serverkit import DOMAIN, POP3, SMTP_MX, SMTP_SUBMISSION, RunningServer, running_server

ACCOUNT = "ma10001a"
PASSWORD = "real user's pw"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(
        tmp_path_factory.mktemp("store"),
        [SMTP_MX, SMTP_SUBMISSION, POP3],
        accounts={ACCOUNT: PASSWORD},
    ) as running:
        yield running


def _tls(server: RunningServer) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(server.config.tls_cert))
    context.check_hostname = False
    return context


def _rcpt(server: RunningServer) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", server.port("smtp", "mx"), timeout=10) as client:
        client.ehlo("relay.example.org")
        client.mail("sender@example.org")
        return client.rcpt(f"{ACCOUNT}@{DOMAIN}")


def _auth(server: RunningServer) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", server.port("smtp", "submission"), timeout=10) as client:
        client.starttls(context=_tls(server))
        client.ehlo("client.example")
        plain = base64.b64encode(f"\0{ACCOUNT}\0{PASSWORD}".encode()).decode()
        return client.docmd("AUTH", f"PLAIN {plain}")


def _pop3(server: RunningServer) -> bytes:
    client = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    try:
        client.stls(_tls(server))
        client.user(ACCOUNT)
        try:
            answer = client.pass_(PASSWORD)
        except poplib.error_proto as refused:
            answer = refused.args[0]
        client.quit()
        return answer
    finally:
        client.close()


def _garbage_line(path: Path) -> None:
    path.write_text(path.read_text() + "<<<<<<< HEAD\n")


def _bad_scheme(path: Path) -> None:
    path.write_text(path.read_text() + "ma10002b:{SHA999}x:::\n")


def _empty(path: Path) -> None:
    path.write_text("")


def _missing(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize("breakage", [_garbage_line, _bad_scheme, _empty, _missing])
def test_every_protocol_answers_temporarily_until_the_file_is_fixed(
    server: RunningServer, breakage: Callable[[Path], None]
) -> None:
    passwd = server.config.passwd_file
    good = passwd.read_text()
    assert _rcpt(server)[0] == 250
    breakage(passwd)
    try:
        assert _rcpt(server) == (451, b"4.3.0 Temporary lookup failure, try again later")
        assert _auth(server) == (454, b"4.7.0 Temporary authentication failure")
        assert _pop3(server).startswith(b"-ERR [SYS/TEMP]")
    finally:
        temporary = passwd.with_name("passwd.new")
        temporary.write_text(good)
        os.replace(temporary, passwd)
    assert _rcpt(server)[0] == 250
    assert _auth(server)[0] == 235
    assert _pop3(server).startswith(b"+OK")
