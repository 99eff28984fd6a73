"""A real aiosmtpd Controller with the integration, driven by smtplib over real TLS."""

from __future__ import annotations

import base64
import contextlib
import logging
import smtplib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd_support import (
    CRAM_PASSWORD,
    CRAM_USER,
    CRYPT_PASSWORD,
    CRYPT_USER,
    DOMAIN,
    PLAIN_PASSWORD,
    PLAIN_USER,
    SERVER_NAME,
    RecordingHandler,
    StartController,
    TlsFiles,
)
from support.serverkit import free_port

import seikyou_auth
from seikyou_auth.server.policy import FailureDelay, Policy

ADDRESS = f"{PLAIN_USER}@{DOMAIN}"
MECHANISMS = ("CRAM-MD5", "LOGIN", "PLAIN")


@contextlib.contextmanager
def implicit_tls_client(port: int, tls_files: TlsFiles) -> Iterator[smtplib.SMTP_SSL]:
    with smtplib.SMTP_SSL("127.0.0.1", port, context=tls_files.client_context()) as client:
        client.ehlo("client.test")
        yield client


def login(client: smtplib.SMTP, mechanism: str, user: str, password: str) -> tuple[int, bytes]:
    """AUTH with ``mechanism`` forced, challenge by challenge (no initial response)."""
    client.user, client.password = user, password
    authobject = getattr(client, "auth_" + mechanism.lower().replace("-", "_"))
    return client.auth(mechanism, authobject, initial_response_ok=False)


def decoded_challenge(reply: bytes) -> bytes:
    return base64.b64decode(reply, validate=True)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_each_mechanism_logs_in_on_implicit_tls_and_sends(
    start_controller: StartController, tls_files: TlsFiles, mechanism: str
) -> None:
    handler = RecordingHandler()
    controller = start_controller(handler, implicit_tls=True)
    with implicit_tls_client(controller.port, tls_files) as client:
        assert client.esmtp_features["auth"].split() == list(MECHANISMS)
        code, text = login(client, mechanism, ADDRESS, PLAIN_PASSWORD)
        assert (code, text) == (235, b"2.7.0 Authentication successful")
        client.sendmail(ADDRESS, ["friend@example.org"], b"Subject: hi\r\n\r\nhello\r\n")
    [message] = handler.messages
    assert message.account == PLAIN_USER
    assert message.mail_from == ADDRESS
    assert message.rcpt_tos == ["friend@example.org"]


def test_initial_responses_work_for_plain_and_login(
    start_controller: StartController, tls_files: TlsFiles
) -> None:
    controller = start_controller(implicit_tls=True)
    for mechanism, authobject in (("PLAIN", "auth_plain"), ("LOGIN", "auth_login")):
        with implicit_tls_client(controller.port, tls_files) as client:
            client.user, client.password = ADDRESS, PLAIN_PASSWORD
            assert client.auth(mechanism, getattr(client, authobject))[0] == 235


def test_login_challenges_are_username_and_password_without_nul(
    start_controller: StartController, tls_files: TlsFiles
) -> None:
    controller = start_controller(implicit_tls=True)
    with implicit_tls_client(controller.port, tls_files) as client:
        code, reply = client.docmd("AUTH", "LOGIN")
        assert (code, decoded_challenge(reply)) == (334, b"Username:")
        code, reply = client.docmd(base64.b64encode(ADDRESS.encode()).decode())
        assert (code, decoded_challenge(reply)) == (334, b"Password:")
        code, _ = client.docmd(base64.b64encode(PLAIN_PASSWORD.encode()).decode())
        assert code == 235


def test_cram_md5_challenge_is_fresh_and_names_the_server(
    start_controller: StartController, tls_files: TlsFiles
) -> None:
    controller = start_controller(implicit_tls=True)
    challenges = []
    for _ in range(2):
        with implicit_tls_client(controller.port, tls_files) as client:
            code, reply = client.docmd("AUTH", "CRAM-MD5")
            assert code == 334
            challenges.append(decoded_challenge(reply))
            assert client.docmd("*")[0] == 501
    assert challenges[0] != challenges[1]
    assert all(c.startswith(b"<") and c.endswith(f"@{SERVER_NAME}>".encode()) for c in challenges)


def test_mechanism_names_are_case_insensitive(
    start_controller: StartController, tls_files: TlsFiles
) -> None:
    controller = start_controller(implicit_tls=True)
    with implicit_tls_client(controller.port, tls_files) as client:
        code, reply = client.docmd("AUTH", "cram-md5")
        assert code == 334
        challenge = decoded_challenge(reply)
        response = seikyou_auth.cram_md5_response(ADDRESS, PLAIN_PASSWORD.encode(), challenge)
        assert client.docmd(base64.b64encode(response).decode())[0] == 235


@pytest.mark.parametrize(
    ("mechanism", "user", "password", "works"),
    [
        ("CRAM-MD5", CRAM_USER, CRAM_PASSWORD, True),  # {CRAM-MD5} stored state
        ("PLAIN", CRAM_USER, CRAM_PASSWORD, True),
        ("PLAIN", CRYPT_USER, CRYPT_PASSWORD, True),  # {SHA512-CRYPT}
        ("LOGIN", CRYPT_USER, CRYPT_PASSWORD, True),
        ("CRAM-MD5", CRYPT_USER, CRYPT_PASSWORD, False),  # a crypt hash cannot answer CRAM-MD5
    ],
)
def test_stored_scheme_decides_which_mechanisms_work(
    start_controller: StartController,
    tls_files: TlsFiles,
    mechanism: str,
    user: str,
    password: str,
    works: bool,
) -> None:
    controller = start_controller(implicit_tls=True)
    with implicit_tls_client(controller.port, tls_files) as client:
        if works:
            assert login(client, mechanism, f"{user}@{DOMAIN}", password)[0] == 235
        else:
            with pytest.raises(smtplib.SMTPAuthenticationError) as failed:
                login(client, mechanism, f"{user}@{DOMAIN}", password)
            assert failed.value.smtp_code == 535


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_wrong_password_and_unknown_user_get_the_same_535(
    start_controller: StartController, tls_files: TlsFiles, mechanism: str
) -> None:
    controller = start_controller(implicit_tls=True)
    replies = []
    for user, password in ((ADDRESS, "wrong-password"), (f"nobody@{DOMAIN}", PLAIN_PASSWORD)):
        with implicit_tls_client(controller.port, tls_files) as client:
            with pytest.raises(smtplib.SMTPAuthenticationError) as failed:
                login(client, mechanism, user, password)
            replies.append((failed.value.smtp_code, failed.value.smtp_error))
            # the session stays usable and unauthenticated
            assert client.docmd("MAIL", f"FROM:<{ADDRESS}>")[0] == 250
    assert replies == [(535, b"5.7.8 Authentication credentials invalid")] * 2


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_star_cancels_the_exchange(
    start_controller: StartController, tls_files: TlsFiles, mechanism: str
) -> None:
    controller = start_controller(implicit_tls=True)
    with implicit_tls_client(controller.port, tls_files) as client:
        assert client.docmd("AUTH", mechanism)[0] == 334
        assert client.docmd("*") == (501, b"5.7.0 Authentication cancelled")
        # a cancelled exchange leaves the client free to try again
        assert login(client, mechanism, ADDRESS, PLAIN_PASSWORD)[0] == 235


def test_bad_base64_and_malformed_payloads_get_501(
    start_controller: StartController, tls_files: TlsFiles
) -> None:
    controller = start_controller(implicit_tls=True)
    with implicit_tls_client(controller.port, tls_files) as client:
        assert client.docmd("AUTH", "PLAIN not*base64") == (
            501,
            b"5.5.2 Malformed authentication data",
        )
        no_nul = base64.b64encode(b"just-a-name").decode()
        assert client.docmd("AUTH", "PLAIN " + no_nul)[0] == 501
        assert client.docmd("AUTH", "CRAM-MD5")[0] == 334
        assert client.docmd(base64.b64encode(b"name-without-digest").decode())[0] == 501
        assert client.docmd("AUTH", "KERBEROS_V4")[0] == 504


def test_response_lines_longer_than_aiosmtpd_reads_are_handled(
    start_controller: StartController, tls_files: TlsFiles
) -> None:
    """aiosmtpd's reader stops at 1001 octets; RFC 4954 allows 12288."""
    controller = start_controller(implicit_tls=True)
    with implicit_tls_client(controller.port, tls_files) as client:
        assert client.docmd("AUTH", "PLAIN")[0] == 334
        long_but_allowed = base64.b64encode(b"\0" + b"u" * 3000 + b"\0pw").decode()
        assert client.docmd(long_but_allowed) == (501, b"5.5.2 Malformed authentication data")
        assert client.docmd("AUTH", "PLAIN")[0] == 334
        assert client.docmd("A" * 20000)[0] == 500
        assert client.noop()[0] == 250
        assert login(client, "PLAIN", ADDRESS, PLAIN_PASSWORD)[0] == 235


def test_client_leaving_mid_exchange_leaves_no_error(
    start_controller: StartController, tls_files: TlsFiles, caplog: pytest.LogCaptureFixture
) -> None:
    controller = start_controller(implicit_tls=True)
    for mechanism in MECHANISMS:
        client = smtplib.SMTP_SSL("127.0.0.1", controller.port, context=tls_files.client_context())
        client.ehlo("client.test")
        assert client.docmd("AUTH", mechanism)[0] == 334
        client.close()
    with implicit_tls_client(controller.port, tls_files) as client:
        assert login(client, "LOGIN", ADDRESS, PLAIN_PASSWORD)[0] == 235
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_implicit_tls_with_a_starttls_context_does_not_offer_starttls(
    start_controller: StartController, tls_files: TlsFiles
) -> None:
    controller = start_controller(implicit_tls=True, starttls=True)
    with implicit_tls_client(controller.port, tls_files) as client:
        assert "starttls" not in client.esmtp_features
        assert client.docmd("STARTTLS")[0] == 454


def test_passwords_never_reach_the_log_even_at_debug_level(
    start_controller: StartController, tls_files: TlsFiles, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    controller = start_controller(implicit_tls=True)
    for mechanism in MECHANISMS:
        for initial_response_ok in (True, False):
            with implicit_tls_client(controller.port, tls_files) as client:
                client.user, client.password = ADDRESS, PLAIN_PASSWORD
                authobject = getattr(client, "auth_" + mechanism.lower().replace("-", "_"))
                assert client.auth(mechanism, authobject, initial_response_ok=initial_response_ok)
    plain_blob = base64.b64encode(f"\0{ADDRESS}\0{PLAIN_PASSWORD}".encode()).decode()
    password_b64 = base64.b64encode(PLAIN_PASSWORD.encode()).decode()
    assert "result=ok" in caplog.text
    for secret in (PLAIN_PASSWORD, password_b64, plain_blob):
        assert secret not in caplog.text


def test_a_login_logs_no_warning(
    start_controller: StartController, tls_files: TlsFiles, caplog: pytest.LogCaptureFixture
) -> None:
    """Stock aiosmtpd logs "Session.login_data is deprecated" on every successful AUTH."""
    controller = start_controller(implicit_tls=True)
    with implicit_tls_client(controller.port, tls_files) as client:
        assert login(client, "PLAIN", ADDRESS, PLAIN_PASSWORD)[0] == 235
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_auth_twice_is_refused(start_controller: StartController, tls_files: TlsFiles) -> None:
    controller = start_controller(implicit_tls=True)
    with implicit_tls_client(controller.port, tls_files) as client:
        assert login(client, "CRAM-MD5", ADDRESS, PLAIN_PASSWORD)[0] == 235
        assert client.docmd("AUTH", "PLAIN")[0] == 503


def test_failure_delay_grows_per_client_and_success_resets_it(
    start_controller: StartController, tls_files: TlsFiles
) -> None:
    controller = start_controller(
        implicit_tls=True, failure_delay=FailureDelay((0.3, 0.6), Policy(()))
    )

    def failed_login_seconds() -> float:
        with implicit_tls_client(controller.port, tls_files) as client:
            started = time.monotonic()
            with pytest.raises(smtplib.SMTPAuthenticationError):
                login(client, "CRAM-MD5", ADDRESS, "wrong-password")
            return time.monotonic() - started

    first, second = failed_login_seconds(), failed_login_seconds()
    assert 0.3 <= first < 0.6 <= second
    with implicit_tls_client(controller.port, tls_files) as client:
        assert login(client, "CRAM-MD5", ADDRESS, PLAIN_PASSWORD)[0] == 235
    assert failed_login_seconds() < 0.6


def test_trusted_networks_are_not_delayed(
    start_controller: StartController, tls_files: TlsFiles
) -> None:
    import ipaddress

    trusted = Policy([ipaddress.ip_network("127.0.0.0/8")])
    controller = start_controller(implicit_tls=True, failure_delay=FailureDelay((5.0,), trusted))
    with implicit_tls_client(controller.port, tls_files) as client:
        started = time.monotonic()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            login(client, "PLAIN", ADDRESS, "wrong-password")
        assert time.monotonic() - started < 2.0


def test_starttls_listener_offers_auth_only_after_starttls(
    start_controller: StartController, tls_files: TlsFiles
) -> None:
    controller = start_controller(starttls=True)
    with smtplib.SMTP("127.0.0.1", controller.port) as client:
        client.ehlo("client.test")
        assert "auth" not in client.esmtp_features
        assert client.docmd("AUTH", "PLAIN")[0] == 538
        client.starttls(context=tls_files.client_context())
        client.ehlo("client.test")
        assert client.esmtp_features["auth"].split() == list(MECHANISMS)
        assert login(client, "LOGIN", ADDRESS, PLAIN_PASSWORD)[0] == 235


def test_unencrypted_listener_with_auth_require_tls_off(
    start_controller: StartController,
) -> None:
    """The ISP sheet's port 587 for clients that can authenticate but not encrypt."""
    controller = start_controller(auth_require_tls=False)
    with smtplib.SMTP("127.0.0.1", controller.port) as client:
        client.ehlo("client.test")
        assert login(client, "CRAM-MD5", ADDRESS, PLAIN_PASSWORD)[0] == 235


def test_auth_required_refuses_mail_before_login(
    start_controller: StartController, tls_files: TlsFiles
) -> None:
    controller = start_controller(implicit_tls=True, auth_required=True)
    with implicit_tls_client(controller.port, tls_files) as client:
        assert client.docmd("MAIL", f"FROM:<{ADDRESS}>")[0] == 530
        assert login(client, "PLAIN", ADDRESS, PLAIN_PASSWORD)[0] == 235
        assert client.docmd("MAIL", f"FROM:<{ADDRESS}>")[0] == 250


def test_store_changes_on_disk_are_seen(
    start_controller: StartController, tls_files: TlsFiles, passwd_file: Any
) -> None:
    controller = start_controller(implicit_tls=True)
    with passwd_file.open("a", encoding="utf-8") as passwd:
        passwd.write("ma10009z:{PLAIN}neko-nyan::::::\n")
    with implicit_tls_client(controller.port, tls_files) as client:
        assert login(client, "CRAM-MD5", f"ma10009z@{DOMAIN}", "neko-nyan")[0] == 235


def test_stock_aiosmtpd_refuses_auth_on_implicit_tls(tls_files: TlsFiles) -> None:
    """The cause the integration fixes: aiosmtpd counts only STARTTLS as TLS."""
    controller = Controller(
        RecordingHandler(),
        hostname="127.0.0.1",
        port=free_port(),
        ssl_context=tls_files.server_context(),
        authenticator=lambda *args: pytest.fail("never reached"),
    )
    controller.start()
    try:
        with implicit_tls_client(controller.port, tls_files) as client:
            assert "auth" not in client.esmtp_features
            assert client.docmd("AUTH", "PLAIN")[0] == 538
    finally:
        controller.stop()
