"""examples/aiosmtpd_submission.py runs as documented: implicit TLS, passwd-file logins."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiosmtpd_support import DOMAIN, PLAIN_PASSWORD, PLAIN_USER, TlsFiles
from support.serverkit import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "aiosmtpd_submission.py"
ADDRESS = f"{PLAIN_USER}@{DOMAIN}"


def test_example_serves_implicit_tls_submission(passwd_file: Path, tls_files: TlsFiles) -> None:
    port = free_port()
    command = [sys.executable, str(EXAMPLE), str(passwd_file), str(tls_files.cert)]
    server = subprocess.Popen(
        [*command, str(tls_files.key), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert f"127.0.0.1:{port}" in server.stdout.readline()
        with smtplib.SMTP_SSL("127.0.0.1", port, context=tls_files.client_context()) as client:
            client.ehlo("client.test")
            assert client.docmd("MAIL", f"FROM:<{ADDRESS}>")[0] == 530
            client.user, client.password = ADDRESS, "wrong-password"
            started = time.monotonic()
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.auth("PLAIN", client.auth_plain)
            assert time.monotonic() - started >= 1.9, "the default failure delay starts at 2 s"
            client.login(ADDRESS, PLAIN_PASSWORD)
            client.sendmail(ADDRESS, ["friend@example.org"], b"Subject: example\r\n\r\nhi\r\n")
    finally:
        server.send_signal(signal.SIGINT)
        output, errors = server.communicate(timeout=30)
    assert server.returncode == 0, errors
    assert "Subject: example" in output
