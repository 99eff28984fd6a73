"""examples/twisted_submission.py: Twisted ESMTP with the seikyou-auth checker, driven by
smtplib and swaks over real implicit TLS."""

from __future__ import annotations

import base64
import re
import shutil
import smtplib
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
from twisted_support import SERVER_NAME, SUBMISSION, RunningExample, run_example

ADDRESS = f"{PLAIN_USER}@{DOMAIN}"
SWAKS_AUTH_FAILED = 28  # swaks' exit status when the server rejects AUTH
CORE_CHALLENGE = re.compile(rb"<\d{20}\.\d+@" + re.escape(SERVER_NAME.encode()) + rb">")


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    path = tmp_path / "outbox"
    path.mkdir()
    return path


@pytest.fixture
def server(passwd_file: Path, tls_files: TlsFiles, outbox: Path) -> Iterator[RunningExample]:
    with run_example(SUBMISSION, passwd_file, tls_files.cert, tls_files.key, outbox) as running:
        yield running


def connect(server: RunningExample, tls_files: TlsFiles) -> smtplib.SMTP_SSL:
    client = smtplib.SMTP_SSL(
        "127.0.0.1", server.port, context=tls_files.client_context(), timeout=30
    )
    client.ehlo("client.test")
    return client


def login(client: smtplib.SMTP, mechanism: str, user: str, password: str) -> tuple[int, bytes]:
    """AUTH with ``mechanism`` forced, challenge by challenge (no initial response)."""
    client.user, client.password = user, password
    authobject = getattr(client, "auth_" + mechanism.lower().replace("-", "_"))
    return client.auth(mechanism, authobject, initial_response_ok=False)


def sent_messages(outbox: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted(outbox.glob("*.eml"))]


@pytest.mark.parametrize("mechanism", ["CRAM-MD5", "LOGIN", "PLAIN"])
def test_smtplib_logs_in_with_each_mechanism_and_sends(
    server: RunningExample, tls_files: TlsFiles, outbox: Path, mechanism: str
) -> None:
    with connect(server, tls_files) as client:
        assert client.has_extn("auth")
        assert set(client.esmtp_features["auth"].split()) == {"CRAM-MD5", "LOGIN", "PLAIN"}
        assert login(client, mechanism, ADDRESS, PLAIN_PASSWORD)[0] == 235
        client.sendmail(ADDRESS, ["friend@example.org"], b"Subject: via twisted\r\n\r\nhi\r\n")
    [message] = sent_messages(outbox)
    assert f"(authenticated as {PLAIN_USER})".encode() in message
    assert b"Subject: via twisted" in message


def test_cram_md5_stored_account_logs_in_without_a_plaintext(
    server: RunningExample, tls_files: TlsFiles
) -> None:
    # The passwd-file holds only {CRAM-MD5} prepared state for this account.
    with connect(server, tls_files) as client:
        assert login(client, "CRAM-MD5", CRAM_USER, CRAM_PASSWORD)[0] == 235
    with connect(server, tls_files) as client:
        assert login(client, "PLAIN", CRAM_USER, CRAM_PASSWORD)[0] == 235


def test_crypt_stored_account_uses_cleartext_mechanisms_only(
    server: RunningExample, tls_files: TlsFiles
) -> None:
    with connect(server, tls_files) as client:
        assert login(client, "PLAIN", CRYPT_USER, CRYPT_PASSWORD)[0] == 235
    with connect(server, tls_files) as client, pytest.raises(smtplib.SMTPAuthenticationError):
        # A SHA512-CRYPT hash cannot answer a CRAM-MD5 challenge, right password or not.
        login(client, "CRAM-MD5", CRYPT_USER, CRYPT_PASSWORD)


def test_cram_md5_challenge_comes_from_the_core(
    server: RunningExample, tls_files: TlsFiles
) -> None:
    challenges = []
    for _ in range(2):
        with connect(server, tls_files) as client:
            code, encoded = client.docmd("AUTH", "CRAM-MD5")
            assert code == 334
            challenges.append(base64.b64decode(encoded, validate=True))
            assert client.docmd("*")[0] == 501
    # Twisted's own challenge is <random.randrange(2**31).time@host>, at most 10 digits.
    assert all(CORE_CHALLENGE.fullmatch(challenge) for challenge in challenges), challenges
    assert challenges[0] != challenges[1]


def test_wrong_password_is_refused_after_the_delay_and_logged_without_it(
    passwd_file: Path, tls_files: TlsFiles, outbox: Path
) -> None:
    with run_example(SUBMISSION, passwd_file, tls_files.cert, tls_files.key, outbox) as server:
        with connect(server, tls_files) as client:
            started = time.monotonic()
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                login(client, "PLAIN", ADDRESS, "not-the-password")
            assert time.monotonic() - started >= 1.9, "the default failure delay starts at 2 s"
            assert refused.value.smtp_code == 535
            assert refused.value.smtp_error == b"5.7.8 Authentication credentials invalid"
            assert login(client, "PLAIN", ADDRESS, PLAIN_PASSWORD)[0] == 235
    assert ("smtp login result=failed mechanism=PLAIN client=127.0.0.1 tls=yes ms=") in server.log
    assert f'user="{ADDRESS}"' in server.log
    assert "result=ok mechanism=PLAIN" in server.log
    assert "not-the-password" not in server.log
    assert sent_messages(outbox) == []


@pytest.mark.parametrize(
    ("command", "response"),
    [
        ("AUTH PLAIN", base64.b64encode(b"no separators at all")),
        ("AUTH PLAIN", b"%%% not base64 %%%"),
        ("AUTH CRAM-MD5", base64.b64encode(b"no-digest-after-the-name")),
        ("AUTH LOGIN", base64.b64encode(b"user\x00with-nul")),
    ],
)
def test_malformed_responses_get_501_and_the_session_goes_on(
    server: RunningExample, tls_files: TlsFiles, command: str, response: bytes
) -> None:
    with connect(server, tls_files) as client:
        assert client.docmd(command)[0] == 334
        code, text = client.docmd(response.decode("ascii"))
        assert code == 501, text
        assert login(client, "PLAIN", ADDRESS, PLAIN_PASSWORD)[0] == 235


def test_mail_without_login_is_refused(server: RunningExample, tls_files: TlsFiles) -> None:
    with connect(server, tls_files) as client:
        code, _ = client.docmd("MAIL", f"FROM:<{ADDRESS}>")
        assert code >= 500


def test_store_trouble_is_a_temporary_failure(
    passwd_file: Path, tls_files: TlsFiles, outbox: Path
) -> None:
    with run_example(SUBMISSION, passwd_file, tls_files.cert, tls_files.key, outbox) as server:
        # A line the store cannot parse stops its logins until it is fixed: try again later.
        with passwd_file.open("a", encoding="utf-8") as damaged:
            damaged.write("a line that is no passwd-file entry\n")
        with connect(server, tls_files) as client:
            code, text = login_raw_plain(client, ADDRESS, PLAIN_PASSWORD)
    assert (code, text) == (454, b"4.7.0 Temporary authentication failure")
    assert "result=unavailable" in server.log


def login_raw_plain(client: smtplib.SMTP, user: str, password: str) -> tuple[int, bytes]:
    response = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
    return client.docmd("AUTH", f"PLAIN {response}")


def swaks(
    port: int, tls_files: TlsFiles, mechanism: str, password: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "swaks",
            "--server", f"127.0.0.1:{port}",
            "--tlsc",
            "--tls-verify",
            "--tls-ca-path", str(tls_files.cert),
            "--ehlo", "client.test",
            "--auth", mechanism,
            "--auth-user", ADDRESS,
            "--auth-password", password,
            "--from", ADDRESS,
            "--to", "friend@example.org",
            "--header", "Subject: swaks to twisted",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip


needs_swaks = pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")


@needs_swaks
@pytest.mark.parametrize("mechanism", ["CRAM-MD5", "LOGIN", "PLAIN"])
def test_swaks_authenticates_and_sends(
    server: RunningExample, tls_files: TlsFiles, outbox: Path, mechanism: str
) -> None:
    result = swaks(server.port, tls_files, mechanism, PLAIN_PASSWORD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "<~  235 " in result.stdout
    [message] = sent_messages(outbox)
    assert b"Subject: swaks to twisted" in message


@needs_swaks
def test_swaks_sees_the_wrong_password_refused(
    server: RunningExample, tls_files: TlsFiles, outbox: Path
) -> None:
    result = swaks(server.port, tls_files, "CRAM-MD5", "not-the-password")
    assert result.returncode == SWAKS_AUTH_FAILED, result.stdout + result.stderr
    assert "<~* 535 5.7.8 Authentication credentials invalid" in result.stdout
    assert sent_messages(outbox) == []
