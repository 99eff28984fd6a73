"""SMTP AUTH (RFC 4954) with real clients: smtplib per mechanism, STARTTLS and implicit TLS."""

from __future__ import annotations

import base64
import logging
import re
import smtplib
import threading
import time
from pathlib import Path

import pytest
from support.serverkit import SMTP_SUBMISSION, RunningServer, running_server
from support.smtp_wire import (
    ACCOUNT,
    ACCOUNTS,
    ADDRESS,
    PASSWORD,
    Wire,
    b64,
    client_tls_context,
    plain_ir,
)

MECHANISMS = ["CRAM-MD5", "LOGIN", "PLAIN"]


def _force(client: smtplib.SMTP, mechanism: str) -> None:
    client.ehlo()
    client.esmtp_features["auth"] = mechanism


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_smtplib_login_each_mechanism_over_starttls(
    server: RunningServer, submission_port: int, mechanism: str
) -> None:
    with smtplib.SMTP("127.0.0.1", submission_port) as client:
        client.starttls(context=client_tls_context())
        _force(client, mechanism)
        code, text = client.login(ADDRESS, PASSWORD)
        assert (code, text) == (235, b"2.7.0 Authentication successful")
        client.sendmail(ADDRESS, [ADDRESS], f"Subject: {mechanism}\r\n\r\nhello\r\n")
    (message,) = server.messages(ACCOUNT)
    assert f"Subject: {mechanism}".encode() in message
    assert b"with ESMTPSA" in message
    assert b"(authenticated as ma10001a)" in message


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_smtp_ssl_login_each_mechanism_on_implicit_tls(
    submissions_port: int, mechanism: str
) -> None:
    with smtplib.SMTP_SSL("127.0.0.1", submissions_port, context=client_tls_context()) as client:
        _force(client, mechanism)
        assert client.login(ADDRESS, PASSWORD)[0] == 235


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_wrong_password_and_unknown_user_get_the_same_535(
    submission_port: int, mechanism: str
) -> None:
    answers = []
    for user, password in ((ADDRESS, "wrong"), ("nobody@seikyou.ne.jp", PASSWORD)):
        with smtplib.SMTP("127.0.0.1", submission_port) as client:
            _force(client, mechanism)
            with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
                client.login(user, password)
            answers.append((caught.value.smtp_code, caught.value.smtp_error))
    assert answers[0] == answers[1] == (535, b"5.7.8 Authentication credentials invalid")


def test_bare_account_name_is_accepted_too(submission_port: int) -> None:
    with smtplib.SMTP("127.0.0.1", submission_port) as client:
        _force(client, "PLAIN")
        assert client.login(ACCOUNT, PASSWORD)[0] == 235


def test_initial_responses_equals_and_star(submission_port: int) -> None:
    with Wire(submission_port) as wire:
        wire.ehlo()
        # PLAIN with an initial response: one round trip.
        assert wire.command(f"AUTH PLAIN {plain_ir()}")[0] == 235
    with Wire(submission_port) as wire:
        wire.ehlo()
        # LOGIN with the user name as initial response: only the password is asked.
        code, text = wire.command(f"AUTH LOGIN {b64(ADDRESS)}")
        assert (code, base64.b64decode(text)) == (334, b"Password:")
        assert wire.command(b64(PASSWORD))[0] == 235
    with Wire(submission_port) as wire:
        wire.ehlo()
        # "=" is the empty initial response; an empty PLAIN message is malformed.
        assert wire.command("AUTH PLAIN =") == (501, "5.5.2 Cannot decode response")
        # Without an initial response PLAIN sends an empty challenge "334 ".
        wire.send(b"AUTH PLAIN\r\n")
        assert wire.line() == b"334 "
        assert wire.command("*") == (501, "5.7.0 Authentication cancelled")
        code, _ = wire.command("AUTH LOGIN")
        assert code == 334
        assert wire.command("*")[0] == 501
        assert wire.command("AUTH CRAM-MD5")[0] == 334
        assert wire.command("*") == (501, "5.7.0 Authentication cancelled")
        # After all that the session still works.
        assert wire.command(f"AUTH PLAIN {plain_ir()}")[0] == 235


def test_bad_base64_unknown_mechanism_and_twice(submission_port: int) -> None:
    with Wire(submission_port) as wire:
        wire.ehlo()
        assert wire.command("AUTH PLAIN not*base64") == (501, "5.5.2 Cannot decode response")
        assert wire.command("AUTH LOGIN")[0] == 334
        assert wire.command("dXNlcg")[0] == 501  # missing padding
        assert wire.command("AUTH GSSAPI") == (504, "5.5.4 Unrecognized authentication type")
        assert wire.command("AUTH")[0] == 501
        # CRAM-MD5 is server-first: an initial response is a protocol error.
        assert wire.command("AUTH CRAM-MD5 " + b64("x y"))[0] == 501
        wire.login()
        assert wire.command(f"AUTH PLAIN {plain_ir()}") == (503, "5.5.1 Already authenticated")
        assert wire.command(f"MAIL FROM:<{ADDRESS}>")[0] == 250


def test_auth_inside_a_transaction_is_503(tmp_path: Path) -> None:
    listener = {**SMTP_SUBMISSION}
    with (
        running_server(tmp_path, [listener], accounts=ACCOUNTS) as server,
        Wire(server.port("smtp")) as wire,
    ):
        wire.ehlo()
        assert wire.cram_md5()[0] == 235
        assert wire.command(f"MAIL FROM:<{ADDRESS}>")[0] == 250
        code, text = wire.command("AUTH CRAM-MD5")
        assert code == 503 and text.startswith("5.5.1")


def test_auth_before_ehlo_is_503(submission_port: int) -> None:
    with Wire(submission_port) as wire:
        assert wire.command(f"AUTH PLAIN {plain_ir()}")[0] == 503
        wire.command("HELO client.example")
        assert wire.command(f"AUTH PLAIN {plain_ir()}")[0] == 503


def test_auth_response_limit_is_12288_octets(submission_port: int) -> None:
    with Wire(submission_port) as wire:
        wire.ehlo()
        assert wire.command("AUTH LOGIN")[0] == 334
        # 12288 octets of valid base64 are accepted as a line (then fail as a user name).
        assert wire.command("QUFB" * 3072)[0] == 501
        assert wire.command("AUTH LOGIN")[0] == 334
        code, text = wire.command("QUFB" * 3073)
        assert (code, text) == (500, "5.5.6 Authentication exchange line is too long")
        # An initial response may be as long as a response.
        code, _ = wire.command("AUTH PLAIN " + plain_ir(password="p" * 200))
        assert code == 535


def test_store_unavailable_is_454(server: RunningServer, submission_port: int) -> None:
    passwd = server.config.passwd_file
    passwd.unlink()
    passwd.mkdir()  # reading a directory fails: the store is unavailable, not empty
    with Wire(submission_port) as wire:
        wire.ehlo()
        assert wire.command(f"AUTH PLAIN {plain_ir()}") == (
            454,
            "4.7.0 Temporary authentication failure",
        )


def test_cleartext_refused_from_untrusted_address_until_tls(tmp_path: Path) -> None:
    listener = {**SMTP_SUBMISSION, "address": "127.0.0.2"}
    settings = {"trusted_networks": ["127.0.0.1/32"]}
    with running_server(tmp_path, [listener], settings, ACCOUNTS) as server:
        port = server.port("smtp")
        with Wire(port, "127.0.0.2") as wire:
            keywords = wire.ehlo()
            assert "AUTH CRAM-MD5" in keywords
            assert wire.command(f"AUTH PLAIN {plain_ir()}") == (
                538,
                "5.7.11 Encryption required for requested authentication mechanism",
            )
            assert wire.command("AUTH LOGIN")[0] == 538
            assert wire.cram_md5()[0] == 235
        with Wire(port, "127.0.0.2") as wire:
            wire.ehlo()
            wire.starttls()
            assert "AUTH CRAM-MD5 PLAIN LOGIN" in wire.ehlo()
            wire.login()


def test_cleartext_never_and_always(tmp_path: Path) -> None:
    for setting, expected in (("never", "AUTH CRAM-MD5"), ("always", "AUTH CRAM-MD5 PLAIN LOGIN")):
        directory = tmp_path / setting
        directory.mkdir()
        listener = {**SMTP_SUBMISSION, "address": "127.0.0.2"}
        settings = {"trusted_networks": ["127.0.0.2/32"], "smtp": {"cleartext_auth": setting}}
        with running_server(directory, [listener], settings, ACCOUNTS) as server:
            with Wire(server.port("smtp"), "127.0.0.2") as wire:
                assert expected in wire.ehlo()


def test_broken_auth_clients_also_get_the_old_auth_equals_line(tmp_path: Path) -> None:
    settings = {"smtp": {"broken_auth_clients": True}}
    with running_server(tmp_path, [SMTP_SUBMISSION], settings, ACCOUNTS) as server:
        with Wire(server.port("smtp")) as wire:
            keywords = wire.ehlo()
            assert "AUTH CRAM-MD5 PLAIN LOGIN" in keywords
            assert "AUTH=CRAM-MD5 PLAIN LOGIN" in keywords


def test_mx_offers_no_auth(server: RunningServer, mx_port: int) -> None:
    with Wire(mx_port) as wire:
        assert not [k for k in wire.ehlo() if k.startswith("AUTH")]
        code, text = wire.command(f"AUTH PLAIN {plain_ir()}")
        assert code == 503 and "587" in text and "465" in text


def test_ten_wrong_passwords_delay_grows_while_others_are_served(tmp_path: Path) -> None:
    listeners = [
        {**SMTP_SUBMISSION, "address": "127.0.0.2"},
        {**SMTP_SUBMISSION, "address": "127.0.0.1"},
    ]
    settings = {
        "trusted_networks": ["127.0.0.1/32"],
        "limits": {"failure_delays": [0.1, 0.2, 0.4, 0.75], "max_bad_commands": 50},
    }
    with running_server(tmp_path, listeners, settings, ACCOUNTS) as server:
        untrusted = next(b.port for b in server.bound if b.address == "127.0.0.2")
        trusted = next(b.port for b in server.bound if b.address == "127.0.0.1")
        served: list[float] = []
        done = threading.Event()

        def other_client() -> None:
            while not done.is_set():
                started = time.monotonic()
                with Wire(trusted) as wire:
                    wire.ehlo()
                    wire.login()
                served.append(time.monotonic() - started)
                time.sleep(0.05)

        helper = threading.Thread(target=other_client)
        helper.start()
        try:
            took = []
            with Wire(untrusted, "127.0.0.2") as wire:
                wire.ehlo()
                for attempt in range(10):
                    started = time.monotonic()
                    user = ADDRESS if attempt % 2 else "nobody@seikyou.ne.jp"
                    assert wire.cram_md5(user, "wrong")[0] == 535
                    took.append(time.monotonic() - started)
                # A success resets the penalty.
                assert wire.cram_md5()[0] == 235
        finally:
            done.set()
            helper.join()
    assert took[0] < took[1] < took[2] < took[3]
    assert took[0] >= 0.1 and took[3] >= 0.75
    assert all(t >= 0.75 for t in took[3:])  # capped at the last delay
    assert len(served) >= 10  # the other client kept getting answers meanwhile
    assert max(served) < 0.5


def test_one_log_line_per_attempt_and_never_the_password(
    caplog: pytest.LogCaptureFixture, submission_port: int
) -> None:
    caplog.set_level(logging.INFO, logger="seikyou_auth")
    with Wire(submission_port) as wire:
        wire.ehlo()
        assert wire.command(f"AUTH PLAIN {plain_ir(password='Wr0ngSecret')}")[0] == 535
        assert wire.cram_md5()[0] == 235
    lines = [r.getMessage() for r in caplog.records if r.name == "seikyou_auth.login"]
    assert len(lines) == 2
    assert lines[0].startswith("smtp login result=failed mechanism=PLAIN client=127.0.0.1 tls=no")
    assert lines[0].endswith(' user="ma10001a@seikyou.ne.jp"')
    assert "mechanism=CRAM-MD5" in lines[1] and "result=ok" in lines[1]
    everything = caplog.text + "".join(lines)
    for secret in (PASSWORD, "Wr0ngSecret", plain_ir(password="Wr0ngSecret")):
        assert secret not in everything


# What a fail2ban-style filter reads: key=value pairs, a value quoted when it starts with '"'.
_LOGFMT_FIELD = re.compile(r'([a-z]+)=("(?:[^"\\]|\\.)*"|[^\s"]+)')


@pytest.mark.parametrize(
    "authcid",
    [
        "evil client=203.0.113.9 tls=no result=ok",
        'evil" client="203.0.113.9',
        'evil\\" client=203.0.113.9 \u00e9\x7f',
    ],
)
def test_a_forged_client_field_stays_inside_the_quoted_user(
    caplog: pytest.LogCaptureFixture, submission_port: int, authcid: str
) -> None:
    caplog.set_level(logging.INFO, logger="seikyou_auth.login")
    with Wire(submission_port) as wire:
        wire.ehlo()
        assert wire.command(f"AUTH PLAIN {plain_ir(user=authcid)}")[0] == 535
    (line,) = [r.getMessage() for r in caplog.records if r.name == "seikyou_auth.login"]
    assert line.startswith("smtp login result=failed mechanism=PLAIN client=127.0.0.1 tls=no ms=")
    fields = _LOGFMT_FIELD.findall(line.split(" ", 2)[2])
    assert [key for key, _ in fields] == ["result", "mechanism", "client", "tls", "ms", "user"]
    assert dict(fields)["client"] == "127.0.0.1"
    user = dict(fields)["user"]
    assert user[1:-1].encode().decode("unicode_escape") == authcid
    assert line.isascii() and line.isprintable()
