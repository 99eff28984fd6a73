"""curl (libcurl's SMTP client) against the integration over implicit TLS."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from aiosmtpd_support import (
    DOMAIN,
    PLAIN_PASSWORD,
    PLAIN_USER,
    RecordingHandler,
    StartController,
    TlsFiles,
)

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

ADDRESS = f"{PLAIN_USER}@{DOMAIN}"
CURL_LOGIN_DENIED = 67  # curl: "the user name, password, or similar was not accepted"


def curl(port: int, tls_files: TlsFiles, mechanism: str, password: str, message: Path) -> int:
    return subprocess.run(
        [
            "curl", "--silent", "--show-error",
            "--url", f"smtps://127.0.0.1:{port}",
            "--cacert", str(tls_files.cert),
            "--login-options", f"AUTH={mechanism}",
            "--user", f"{ADDRESS}:{password}",
            "--mail-from", ADDRESS,
            "--mail-rcpt", "friend@example.org",
            "--upload-file", str(message),
        ],
        capture_output=True,
        timeout=30,
        check=False,
    ).returncode  # fmt: skip


@pytest.mark.parametrize("mechanism", ["CRAM-MD5", "LOGIN", "PLAIN"])
def test_curl_authenticates_and_sends_over_implicit_tls(
    start_controller: StartController, tls_files: TlsFiles, tmp_path: Path, mechanism: str
) -> None:
    message = tmp_path / "message.eml"
    message.write_bytes(b"Subject: curl over smtps\r\n\r\nhello\r\n")
    handler = RecordingHandler()
    controller = start_controller(handler, implicit_tls=True)
    assert curl(controller.port, tls_files, mechanism, PLAIN_PASSWORD, message) == 0
    [delivered] = handler.messages
    assert (delivered.account, delivered.mail_from) == (PLAIN_USER, ADDRESS)
    assert b"Subject: curl over smtps" in delivered.content


def test_curl_wrong_password_is_denied(
    start_controller: StartController, tls_files: TlsFiles, tmp_path: Path
) -> None:
    message = tmp_path / "message.eml"
    message.write_bytes(b"Subject: never sent\r\n\r\n")
    handler = RecordingHandler()
    controller = start_controller(handler, implicit_tls=True)
    assert curl(controller.port, tls_files, "LOGIN", "wrong", message) == CURL_LOGIN_DENIED
    assert handler.messages == []
