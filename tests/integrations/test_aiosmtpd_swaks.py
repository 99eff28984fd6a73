"""swaks (a real SMTP client, Perl/OpenSSL) against the integration over implicit TLS."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from aiosmtpd_support import (
    DOMAIN,
    PLAIN_PASSWORD,
    PLAIN_USER,
    RecordingHandler,
    StartController,
    TlsFiles,
)

pytestmark = pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")

ADDRESS = f"{PLAIN_USER}@{DOMAIN}"
SWAKS_AUTH_FAILED = 28  # swaks' exit status when the server rejects AUTH


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
            "--header", "Subject: swaks over implicit TLS",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize("mechanism", ["CRAM-MD5", "LOGIN", "PLAIN"])
def test_swaks_authenticates_and_sends_over_implicit_tls(
    start_controller: StartController, tls_files: TlsFiles, mechanism: str
) -> None:
    handler = RecordingHandler()
    controller = start_controller(handler, implicit_tls=True)
    result = swaks(controller.port, tls_files, mechanism, PLAIN_PASSWORD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "<~  235 2.7.0 Authentication successful" in result.stdout
    [message] = handler.messages
    assert (message.account, message.mail_from) == (PLAIN_USER, ADDRESS)
    assert b"Subject: swaks over implicit TLS" in message.content


def test_swaks_sees_the_wrong_password_rejected(
    start_controller: StartController, tls_files: TlsFiles
) -> None:
    handler = RecordingHandler()
    controller = start_controller(handler, implicit_tls=True)
    result = swaks(controller.port, tls_files, "CRAM-MD5", "not-the-password")
    assert result.returncode == SWAKS_AUTH_FAILED, result.stdout + result.stderr
    assert "<~* 535 5.7.8 Authentication credentials invalid" in result.stdout
    assert handler.messages == []
