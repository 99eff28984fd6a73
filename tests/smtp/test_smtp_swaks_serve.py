"""swaks against the server, and ``seikyou-auth serve`` with no config from a clean directory."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import ModuleType

import pytest
from support.serverkit import (
    RunningServer,
    free_port,
    port_is_free,
    serve_subprocess,
    write_config,
    write_passwd,
)
from support.smtp_wire import ACCOUNT, ADDRESS, OTHER_ACCOUNT, PASSWORD

SWAKS = shutil.which("swaks")
pytestmark = pytest.mark.skipif(SWAKS is None, reason="swaks is not installed")


def swaks(port: int, *options: str, to: str = f"{OTHER_ACCOUNT}@seikyou.ne.jp") -> str:
    assert SWAKS is not None
    result = subprocess.run(
        [
            SWAKS,
            "--server",
            f"127.0.0.1:{port}",
            "--from",
            ADDRESS,
            "--to",
            to,
            "--auth-user",
            ADDRESS,
            "--auth-password",
            PASSWORD,
            "--timeout",
            "20",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("mechanism", ["CRAM-MD5", "LOGIN", "PLAIN"])
@pytest.mark.parametrize("tls", ["--tls", "--tlsc"])
def test_swaks_authenticates_and_sends(server: RunningServer, mechanism: str, tls: str) -> None:
    port = server.port("smtp", "submission", "starttls" if tls == "--tls" else "implicit")
    transcript = swaks(port, "--auth", mechanism, tls)
    assert "235 2.7.0 Authentication successful" in transcript
    assert "250 2.0.0 Ok: queued as" in transcript
    (message,) = server.messages(OTHER_ACCOUNT)
    assert b"with ESMTPSA" in message and b"(authenticated as ma10001a)" in message


def test_swaks_cleartext_from_trusted_network(server: RunningServer) -> None:
    transcript = swaks(server.port("smtp", "submission", "starttls"), "--auth", "LOGIN")
    assert "334 VXNlcm5hbWU6" in transcript  # "Username:" with no trailing NUL
    assert len(server.messages(OTHER_ACCOUNT)) == 1


def test_swaks_to_mx_without_auth(server: RunningServer) -> None:
    assert SWAKS is not None
    result = subprocess.run(
        [
            SWAKS,
            "--server",
            f"127.0.0.1:{server.port('smtp', 'mx')}",
            "--to",
            ADDRESS,
            "--from",
            "someone@example.org",
            "--tls",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout
    (message,) = server.messages(ACCOUNT)
    assert b"with ESMTPS id" in message


def test_serve_with_embedded_default(tmp_path: Path, backend: ModuleType) -> None:
    ports = [10025, 10587, 10465, 10110, 10995]
    if not all(port_is_free(port) for port in ports):
        pytest.skip("the default ports 10025/10587/10465/10110/10995 are busy")
    env = {"SEIKYOU_AUTH_BACKEND": "rust" if backend.__name__.endswith("._core") else "python"}
    with serve_subprocess(tmp_path, None, expect_lines=5, env=env) as process:
        data = tmp_path / "seikyou-data"
        assert (data / "passwd").read_text() == ""
        assert (data / "tls" / "cert.pem").is_file()
        # The passwd file is reloaded when it changes: add the accounts now.
        time.sleep(0.05)
        write_passwd(data / "passwd", {ACCOUNT: PASSWORD, OTHER_ACCOUNT: "x"}, "SHA512-CRYPT")
        swaks(10587, "--auth", "PLAIN", "--tls")
        swaks(10465, "--auth", "LOGIN", "--tlsc")
        new = data / "mail" / OTHER_ACCOUNT / "new"
        assert len(list(new.iterdir())) == 2
        process.terminate()
        assert process.wait(30) == 0
    log = (tmp_path / "serve.log").read_text()
    assert "result=ok mechanism=PLAIN client=127.0.0.1 tls=yes" in log
    assert PASSWORD not in log


@pytest.mark.parametrize(("workers", "loop"), [(1, "asyncio"), (2, "uvloop")])
def test_serve_stops_cleanly_on_sigint(tmp_path: Path, workers: int, loop: str) -> None:
    port = free_port()
    listener = {"protocol": "smtp", "role": "submission", "address": "127.0.0.1", "port": port}
    settings = {"workers": workers, "event_loop": loop, "hostname": "h.example"}
    config = write_config(tmp_path / "s.toml", {**settings, "listener": [listener]})
    write_passwd(tmp_path / "seikyou-data" / "passwd", {ACCOUNT: PASSWORD, OTHER_ACCOUNT: "x"})
    with serve_subprocess(tmp_path, config, expect_lines=1) as process:
        for _ in range(3):  # with two workers the kernel spreads these over both
            swaks(port, "--auth", "CRAM-MD5", "--tls")
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
        assert process.stdout is not None
        assert "seikyou-auth stopping" in process.stdout.read()
    assert len(list((tmp_path / "seikyou-data" / "mail" / OTHER_ACCOUNT / "new").iterdir())) == 3
