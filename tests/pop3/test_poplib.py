"""POP3 with Python's poplib, the real client: logins, retrieval, deletion, locking, policy."""

from __future__ import annotations

import hashlib
import poplib
import re
import threading
import time

import pytest
from pop3kit import (
    APOP_PASSWORD,
    APOP_USER,
    CRYPT_PASSWORD,
    CRYPT_USER,
    OUTSIDE,
    SPARE_PASSWORD,
    OutsidePOP3,
    OutsidePOP3_SSL,
    Pop3Server,
)

MESSAGE = (
    b"From: sender@example.org\n"
    b"To: ma10001a@seikyou.ne.jp\n"
    b"Subject: dots and lines\n"
    b"\n"
    b".leading dot\n"
    b"..two dots\n"
    b".\n"
    b"last line without newline"
)
MESSAGE_CRLF = MESSAGE.replace(b"\n", b"\r\n")


def lines_to_bytes(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\r\n" for line in lines)


@pytest.fixture
def spare(server: Pop3Server) -> str:
    """An account with an empty mailbox that no other test uses."""
    return server.spare_user()


def test_greeting_carries_a_fresh_apop_timestamp(server: Pop3Server) -> None:
    stamps = set()
    for _ in range(3):
        client = poplib.POP3("127.0.0.1", server.port(), timeout=10)
        welcome = client.getwelcome()
        client.quit()
        stamp = re.findall(rb"<[^<>]*>", welcome)[-1]
        assert re.fullmatch(rb"<[A-Za-z0-9.\-]+@pop\.test\.example>", stamp)
        stamps.add(stamp)
    assert len(stamps) == 3


def test_capa_on_110_inside_before_and_after_stls_and_login(server: Pop3Server) -> None:
    client = poplib.POP3("127.0.0.1", server.port(), timeout=10)
    capa = client.capa()
    for name in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER", "STLS"):
        assert name in capa
    assert capa["SASL"] == ["CRAM-MD5", "PLAIN", "LOGIN"]
    client.stls(server.client_context())
    capa = client.capa()
    assert "STLS" not in capa and "USER" in capa
    client.user(APOP_USER)
    client.pass_(APOP_PASSWORD)
    capa = client.capa()
    assert "USER" not in capa and "SASL" not in capa and "UIDL" in capa
    client.quit()


def test_capa_outside_trusted_networks(server: Pop3Server) -> None:
    client = OutsidePOP3(OUTSIDE, server.port(address=OUTSIDE), timeout=10)
    capa = client.capa()
    assert "USER" not in capa and "STLS" in capa
    assert capa["SASL"] == ["CRAM-MD5"]
    client.quit()
    secure = OutsidePOP3_SSL(
        OUTSIDE, server.port("pop3", "implicit", OUTSIDE), context=server.client_context()
    )
    capa = secure.capa()
    assert "USER" in capa and "STLS" not in capa
    assert capa["SASL"] == ["CRAM-MD5", "PLAIN", "LOGIN"]
    secure.quit()


def test_user_pass_with_spaces_and_byte_exact_retr(server: Pop3Server) -> None:
    server.deliver(APOP_USER, MESSAGE)
    client = poplib.POP3("127.0.0.1", server.port(), timeout=10)
    client.user(APOP_USER)
    assert client.pass_(APOP_PASSWORD).startswith(b"+OK")
    count, _ = client.stat()
    assert count >= 1
    number = count
    response, lines, _ = client.retr(number)
    body = lines_to_bytes(lines)
    assert body == MESSAGE_CRLF + b"\r\n"
    listed = int(client.list(number).split()[2])
    assert listed == len(MESSAGE_CRLF)  # the CRLF added to the unterminated last line is not
    assert response == f"+OK {listed} octets".encode()
    top = client.top(number, 1)[1]
    assert lines_to_bytes(top) == MESSAGE_CRLF.split(b"\r\n\r\n")[0] + b"\r\n\r\n.leading dot\r\n"
    client.dele(number)
    client.quit()


def test_octet_counts_are_crlf_sizes(server: Pop3Server, spare: str) -> None:
    contents = [
        b"Subject: a\n\nx\n",
        b"Subject: b\r\n\r\ny\r\nz\r\n",
        b"Subject: c\n\n" + b"." * 300,
    ]
    for content in contents:
        server.deliver(spare, content)
    client = poplib.POP3("127.0.0.1", server.port(), timeout=10)
    client.user(spare)
    client.pass_(SPARE_PASSWORD)
    expected = [
        len(content.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")) for content in contents
    ]
    assert client.stat() == (3, sum(expected))
    assert client.list()[1] == [f"{n} {size}".encode() for n, size in enumerate(expected, 1)]
    for number, size in enumerate(expected, 1):
        lines = client.retr(number)[1]
        retrieved = b"\r\n".join(lines) + b"\r\n"
        assert len(retrieved) in (size, size + 2)  # + the CRLF a final unterminated line gets
    client.quit()


def test_apop_login_and_scheme_rules(server: Pop3Server) -> None:
    client = poplib.POP3("127.0.0.1", server.port(), timeout=10)
    assert client.apop(APOP_USER, APOP_PASSWORD).startswith(b"+OK")
    client.quit()
    # APOP needs the password in cleartext; a SHA512-CRYPT account cannot use it (Dovecot's rule).
    client = poplib.POP3("127.0.0.1", server.port(), timeout=10)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client.apop(CRYPT_USER, CRYPT_PASSWORD)
    client.user(CRYPT_USER)
    assert client.pass_(CRYPT_PASSWORD).startswith(b"+OK")
    client.quit()


def test_unknown_user_and_wrong_password_fail_alike_and_are_delayed(
    server: Pop3Server,
) -> None:
    answers = []
    for user, password in ((APOP_USER, "wrong password"), ("nosuchuser", "wrong password")):
        client = OutsidePOP3_SSL(
            OUTSIDE, server.port("pop3", "implicit", OUTSIDE), context=server.client_context()
        )
        client.user(user)
        started = time.monotonic()
        with pytest.raises(poplib.error_proto) as failure:
            client.pass_(password)
        answers.append((failure.value.args[0], time.monotonic() - started >= 0.3))
        client.quit()
    assert answers[0] == answers[1] == (b"-ERR [AUTH] Authentication failed", True)


def test_pop3s_user_pass(server: Pop3Server, spare: str) -> None:
    server.deliver(spare, b"Subject: over TLS\n\nhello\n")
    client = poplib.POP3_SSL(
        "127.0.0.1", server.port("pop3", "implicit"), context=server.client_context()
    )
    assert "STLS" not in client.capa()
    client.user(spare)
    client.pass_(SPARE_PASSWORD)
    assert client.retr(1)[1] == [b"Subject: over TLS", b"", b"hello"]
    client.quit()


def test_stls_then_login_outside_trusted_networks(server: Pop3Server, spare: str) -> None:
    client = OutsidePOP3(OUTSIDE, server.port(address=OUTSIDE), timeout=10)
    with pytest.raises(poplib.error_proto, match=r"^b'-ERR \[AUTH\]"):
        client.user(spare)
    client.stls(server.client_context())
    client.user(spare)
    assert client.pass_(SPARE_PASSWORD).startswith(b"+OK")
    client.quit()


def test_cleartext_user_refused_on_110_outside_but_apop_works(server: Pop3Server) -> None:
    client = OutsidePOP3(OUTSIDE, server.port(address=OUTSIDE), timeout=10)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\] Plaintext authentication disallowed"):
        client.user(APOP_USER)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client._shortcmd("AUTH PLAIN AG1hMTAwMDFhAHg=")
    assert client.apop(APOP_USER, APOP_PASSWORD).startswith(b"+OK")
    client.quit()
    secure = OutsidePOP3_SSL(
        OUTSIDE, server.port("pop3", "implicit", OUTSIDE), context=server.client_context()
    )
    secure.user(APOP_USER)
    assert secure.pass_(APOP_PASSWORD).startswith(b"+OK")
    secure.quit()


def test_dele_takes_effect_only_at_quit(server: Pop3Server, spare: str) -> None:
    for subject in (b"keep", b"drop"):
        server.deliver(spare, b"Subject: " + subject + b"\n\n")
    client = poplib.POP3("127.0.0.1", server.port(), timeout=10)
    client.user(spare)
    client.pass_(SPARE_PASSWORD)
    uidls = client.uidl()[1]
    client.dele(2)
    assert client.stat()[0] == 1
    with pytest.raises(poplib.error_proto, match="No such message"):
        client.retr(2)
    with pytest.raises(poplib.error_proto, match="No such message"):
        client.dele(2)
    client.rset()
    assert client.stat()[0] == 2
    client.dele(2)
    # Dropped connection: nothing deleted.
    client.sock.close()
    client.file.close()
    time.sleep(0.2)
    client = poplib.POP3("127.0.0.1", server.port(), timeout=10)
    client.user(spare)
    client.pass_(SPARE_PASSWORD)
    assert client.uidl()[1] == uidls  # and the UIDLs are the same in a new session
    client.dele(2)
    assert b"1 messages deleted" in client.quit()
    client = poplib.POP3("127.0.0.1", server.port(), timeout=10)
    client.user(spare)
    client.pass_(SPARE_PASSWORD)
    assert client.uidl()[1] == uidls[:1]
    assert client.retr(1)[1][0] == b"Subject: keep"
    client.quit()


def test_second_session_on_a_mailbox_gets_in_use(server: Pop3Server, spare: str) -> None:
    first = poplib.POP3("127.0.0.1", server.port(), timeout=10)
    first.user(spare)
    first.pass_(SPARE_PASSWORD)
    second = poplib.POP3_SSL(
        "127.0.0.1", server.port("pop3", "implicit"), context=server.client_context()
    )
    second.user(spare)
    with pytest.raises(poplib.error_proto, match=r"^b'-ERR \[IN-USE\]"):
        second.pass_(SPARE_PASSWORD)
    first.quit()
    second.user(spare)
    assert second.pass_(SPARE_PASSWORD).startswith(b"+OK")
    second.quit()


def test_concurrent_logins_one_wins(server: Pop3Server, spare: str) -> None:
    results: list[str] = []
    barrier = threading.Barrier(4)

    def login() -> None:
        client = poplib.POP3("127.0.0.1", server.port(), timeout=10)
        client.user(spare)
        barrier.wait()
        try:
            client.pass_(SPARE_PASSWORD)
            results.append("ok")
            time.sleep(0.3)
        except poplib.error_proto as error:
            results.append("in-use" if b"[IN-USE]" in error.args[0] else repr(error))
        client.quit()

    threads = [threading.Thread(target=login) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["in-use", "in-use", "in-use", "ok"]


def test_vanished_message_fails_alone(server: Pop3Server, spare: str) -> None:
    server.deliver(spare, b"Subject: one\n\n")
    server.deliver(spare, b"Subject: two\n\n")
    client = poplib.POP3("127.0.0.1", server.port(), timeout=10)
    client.user(spare)
    client.pass_(SPARE_PASSWORD)
    for path in (server.maildir(spare) / "cur").iterdir():
        if path.read_bytes().startswith(b"Subject: one"):
            path.unlink()
    with pytest.raises(poplib.error_proto, match="no longer in the mailbox"):
        client.retr(1)
    with pytest.raises(poplib.error_proto, match="no longer in the mailbox"):
        client.top(1, 0)
    assert client.retr(2)[1][0] == b"Subject: two"
    client.dele(1)
    assert client.quit().startswith(b"+OK")


def test_apop_digest_from_poplib_matches_rfc1939(server: Pop3Server) -> None:
    client = poplib.POP3("127.0.0.1", server.port(), timeout=10)
    stamp = re.findall(rb"<[^<>]*>", client.getwelcome())[-1]
    digest = hashlib.md5(stamp + APOP_PASSWORD.encode()).hexdigest().upper()
    # Upper-case hex is accepted too.
    assert client._shortcmd(f"APOP {APOP_USER} {digest}").startswith(b"+OK")
    client.quit()


def test_large_message_and_top_edge_cases(server: Pop3Server, spare: str) -> None:
    large = b"Subject: large\n\n" + b"".join(b"%07d ........\n" % n for n in range(80_000))
    server.deliver(spare, large)
    server.deliver(spare, b"Subject: headers only, no blank line\n")
    client = poplib.POP3("127.0.0.1", server.port(), timeout=10)
    client.user(spare)
    client.pass_(SPARE_PASSWORD)
    response, lines, _ = client.retr(1)
    assert lines_to_bytes(lines) == large.replace(b"\n", b"\r\n")
    crlf_size = len(large.replace(b"\n", b"\r\n"))
    assert response == f"+OK {crlf_size} octets".encode()
    assert client.top(1, 2)[1] == [b"Subject: large", b"", b"0000000 ........", b"0000001 ........"]
    assert client.top(1, 0)[1] == [b"Subject: large", b""]
    assert client.top(2, 5)[1] == [b"Subject: headers only, no blank line"]
    client.quit()
