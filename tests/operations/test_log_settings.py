"""``[log]`` on a real server: JSON lines, a file that logrotate moves, syslog, level, reload."""

from __future__ import annotations

import grp
import json
import os
import pwd
import socket
import subprocess
from pathlib import Path

import pytest
from opskit import served
from support.rawclient import RawClient
from support.serverkit import POP3, free_port, serve_command, write_config
from support.tools import require_tool

ACCOUNTS = {"ma10001a": "first-secret"}
# quotes, a backslash, a forged field and non-ASCII: what a log reader could misread
HOSTILE_NAME = 'x" client=203.0.113.9 \\ é'
CONTRIB = Path(__file__).resolve().parents[2] / "contrib"
SYSLOG_MAIL_INFO = b"<22>"  # facility mail (2) * 8 + severity info (6)


def _login(port: int, name: str, password: str) -> bytes:
    with RawClient(port) as client:
        client.line()
        client.send(f"USER {name}\r\n".encode())
        client.line()
        client.send(f"PASS {password}\r\n".encode())
        return client.line()


def test_json_lines_escape_client_text(tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    settings = {"log": {"format": "json", "destination": "file", "file": str(log_file)}}
    with served(tmp_path, [POP3], settings, ACCOUNTS) as server:
        assert _login(server.ports[0], HOSTILE_NAME, "wrong").startswith(b"-ERR")
        assert _login(server.ports[0], "ma10001a", "first-secret").startswith(b"+OK")
    entries = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert all(list(entry) == ["time", "level", "logger", "message"] for entry in entries)
    logins = [entry["message"] for entry in entries if entry["logger"] == "seikyou_auth.login"]
    assert logins[0].startswith("pop3 login result=failed mechanism=USER client=127.0.0.1 ")
    assert logins[0].endswith('user="x\\" client=203.0.113.9 \\\\ \\xe9"')
    assert logins[1].endswith('user="ma10001a"')
    assert all(line.isascii() for line in log_file.read_text().splitlines())


def test_a_moved_log_file_is_reopened(tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    settings = {"log": {"destination": "file", "file": str(log_file)}}
    with served(tmp_path, [POP3], settings, ACCOUNTS) as server:
        _login(server.ports[0], "ma10001a", "first-secret")
        rotated = log_file.rename(tmp_path / "server.log.1")
        _login(server.ports[0], "ma10001a", "wrong")
        assert "result=ok" in rotated.read_text()
        assert "result=failed" not in rotated.read_text()
        assert "result=failed" in log_file.read_text()
    assert "result=ok" not in log_file.read_text()


def test_the_contrib_logrotate_snippet_rotates_a_live_log(tmp_path: Path) -> None:
    """Debian's logrotate runs our snippet (only the path and owner changed) under a server."""
    logrotate = require_tool("logrotate")
    log_file = tmp_path / "seikyou-auth.log"
    owner = f"{pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name}"
    snippet = (CONTRIB / "systemd" / "seikyou-auth.logrotate").read_text()
    assert "/var/log/seikyou-auth/seikyou-auth.log {" in snippet
    config = tmp_path / "logrotate.conf"
    config.write_text(
        snippet.replace("/var/log/seikyou-auth/seikyou-auth.log", str(log_file)).replace(
            "seikyou-auth seikyou-auth", owner
        )
    )
    settings = {"log": {"destination": "file", "file": str(log_file)}}
    with served(tmp_path, [POP3], settings, ACCOUNTS) as server:
        _login(server.ports[0], "ma10001a", "first-secret")
        subprocess.run(
            [logrotate, "--force", "--state", str(tmp_path / "state"), str(config)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        _login(server.ports[0], "ma10001a", "wrong")
        rotated = tmp_path / "seikyou-auth.log.1"  # delaycompress: the newest stays plain
        assert "result=ok" in rotated.read_text()
        assert "result=failed" in log_file.read_text()
    assert "result=failed" not in rotated.read_text()
    assert "result=ok" not in log_file.read_text()


def test_syslog_gets_facility_mail(tmp_path: Path) -> None:
    syslog_path = tmp_path / "dev-log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as syslog:
        syslog.bind(str(syslog_path))
        syslog.settimeout(30)
        settings = {"log": {"destination": "syslog", "syslog_socket": str(syslog_path)}}
        with served(tmp_path, [POP3], settings, ACCOUNTS) as server:
            _login(server.ports[0], "ma10001a", "first-secret")
            while b"seikyou_auth.login" not in (datagram := syslog.recv(65536)):
                pass
    assert datagram.startswith(SYSLOG_MAIL_INFO + b"seikyou-auth: INFO seikyou_auth.login: ")
    assert b"pop3 login result=ok mechanism=USER client=127.0.0.1 tls=no" in datagram


def test_level_and_its_reload(tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    settings = {"log": {"level": "warning", "destination": "file", "file": str(log_file)}}
    with served(tmp_path, [POP3], settings, ACCOUNTS) as server:
        _login(server.ports[0], "ma10001a", "wrong")
        assert "login result" not in log_file.read_text()
        louder = dict(server.settings)
        louder["log"] = {"level": "info", "destination": "file", "file": str(log_file)}
        server.rewrite_config(louder)
        server.hangup()
        _login(server.ports[0], "ma10001a", "wrong")
        assert log_file.read_text().count("login result=failed") == 1


@pytest.mark.parametrize(
    ("log", "message"),
    [
        ({"destination": "file"}, "log.file: missing"),
        ({"destination": "file", "file": "no/such/dir/x.log"}, "cannot log to file "),
        ({"destination": "stderr", "file": "x.log"}, 'log.file: only with destination = "file"'),
        ({"destination": "journal"}, "log.destination: 'journal' is not one of"),
        ({"format": "xml"}, "log.format: 'xml' is not one of"),
        ({"level": "verbose"}, "log.level: 'verbose' is not one of"),
    ],
)
def test_bad_log_settings_are_one_line(tmp_path: Path, log: dict[str, str], message: str) -> None:
    config = write_config(
        tmp_path / "seikyou.toml",
        {
            "data_dir": str(tmp_path / "data"),
            "log": log,
            "listener": [{**POP3, "address": "127.0.0.1", "port": free_port()}],
        },
    )
    result = subprocess.run(
        serve_command(config), cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("seikyou-auth: ") and message in lines[0]
    assert not os.path.exists(tmp_path / "no")


def test_a_log_destination_that_cannot_open_refuses_the_reload(tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    settings = {"log": {"destination": "file", "file": str(log_file)}}
    with served(tmp_path, [POP3], settings, ACCOUNTS) as server:
        unwritable = dict(server.settings)
        unwritable["log"] = {"destination": "file", "file": str(tmp_path / "no" / "x.log")}
        unwritable["pop3"] = {"apop": False}
        server.rewrite_config(unwritable)
        server.hangup()
        failures = [line for line in log_file.read_text().splitlines() if "reload failed" in line]
        assert len(failures) == 1
        assert "cannot log to file" in failures[0]
        with RawClient(server.ports[0]) as client:
            assert b"<" in client.line()  # APOP still on: nothing of that config applied
        _login(server.ports[0], "ma10001a", "first-secret")
        assert "login result=ok" in log_file.read_text()
