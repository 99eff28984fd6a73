"""Submitted on 587 by smtplib with CRAM-MD5, retrieved by poplib on 110 (APOP) and 995 (USER)."""

from __future__ import annotations

import poplib
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pop3kit import APOP_PASSWORD, APOP_USER, OUTSIDE, OutsidePOP3, Pop3Server, pop3_server

ADDRESS = f"{APOP_USER}@seikyou.ne.jp"
MESSAGE = (
    f"From: {ADDRESS}\r\n"
    f"To: {ADDRESS}\r\n"
    "Subject: end to end\r\n"
    "Message-ID: <e2e-1@seikyou.ne.jp>\r\n"
    "\r\n"
    ".a line starting with a dot\r\n"
    "..and one with two\r\n"
    "\r\n"
    "last line\r\n"
).encode()


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pop3Server]:
    with pop3_server(tmp_path_factory.mktemp("e2e"), submission=True) as server:
        yield server


def submit(server: Pop3Server, message: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp", "starttls"), timeout=10) as smtp:
        smtp.ehlo("client.example")
        smtp.user, smtp.password = ADDRESS, APOP_PASSWORD
        code, _ = smtp.auth("CRAM-MD5", smtp.auth_cram_md5)
        assert code == 235
        assert smtp.sendmail(ADDRESS, [ADDRESS], message) == {}


def without_received(lines: list[bytes]) -> bytes:
    """The message as CRLF bytes without the Received: field the server added on top."""
    assert lines[0].startswith(b"Received: ")
    rest = 1
    while lines[rest][:1] in (b" ", b"\t"):
        rest += 1
    # RFC 3848: ESMTPA, as this submission authenticated without STARTTLS.
    assert b" with ESMTPA " in b" ".join(lines[:rest])
    return b"".join(line + b"\r\n" for line in lines[rest:])


def apop_session(server: Pop3Server) -> poplib.POP3:
    client = OutsidePOP3(OUTSIDE, server.port(address=OUTSIDE), timeout=10)
    client.apop(APOP_USER, APOP_PASSWORD)
    return client


def test_submitted_mail_is_retrieved_byte_identical_on_110_and_995(e2e: Pop3Server) -> None:
    submit(e2e, MESSAGE)
    client = apop_session(e2e)
    count = client.stat()[0]
    assert count == 1
    apop_copy = without_received(client.retr(1)[1])
    uidl = client.uidl(1)
    client.quit()
    assert apop_copy == MESSAGE

    secure = poplib.POP3_SSL(
        "127.0.0.1", e2e.port("pop3", "implicit"), context=e2e.client_context(), timeout=10
    )
    secure.user(APOP_USER)
    secure.pass_(APOP_PASSWORD)
    assert without_received(secure.retr(1)[1]) == MESSAGE
    assert secure.uidl(1) == uidl
    secure.quit()


def test_dele_with_dropped_connection_keeps_and_quit_removes(e2e: Pop3Server) -> None:
    client = apop_session(e2e)
    before = client.stat()[0]
    assert before >= 1
    client.dele(before)
    client.sock.close()  # dropped connection: no QUIT, no UPDATE state
    client.file.close()
    time.sleep(0.2)
    client = apop_session(e2e)
    assert client.stat()[0] == before
    client.dele(before)
    client.quit()
    client = apop_session(e2e)
    assert client.stat()[0] == before - 1
    client.quit()
    assert not list(Path(e2e.maildir(APOP_USER), "new").iterdir())
