"""fail2ban's own ``fail2ban-regex`` on a log this server wrote after real logins.

It must find every failed login's real client address, once per failure, and never an
address a user name tried to forge into the line.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from opskit import served
from support.rawclient import RawClient
from support.serverkit import POP3, SMTP_SUBMISSION
from support.tools import require_tool

REPO = Path(__file__).resolve().parents[2]
FILTER = REPO / "contrib" / "fail2ban" / "filter.d" / "seikyou-auth.conf"
JAIL = REPO / "contrib" / "fail2ban" / "jail.d" / "seikyou-auth.conf"
ACCOUNTS = {"ma10001a": "first-secret"}
FORGED_NAMES = [
    "x client=127.0.0.99",
    "y rip=127.0.0.98 client=127.0.0.97 tls=yes",
    'z" client=127.0.0.96 tls=yes',
    "w seikyou_auth.login: pop3 login result=failed mechanism=USER client=127.0.0.95 tls=no",
]


def _pop3_login(port: int, source: str, name: str, password: str) -> bytes:
    with RawClient(port, source=source) as client:
        client.line()
        client.send(f"USER {name}\r\n".encode())
        client.line()
        client.send(f"PASS {password}\r\n".encode())
        return client.line()


def _smtp_failed_login(port: int, source: str) -> None:
    with RawClient(port, source=source) as client:
        client.line()
        client.send("EHLO client.example\r\n")
        while not client.line().startswith(b"250 "):
            pass
        client.send("AUTH PLAIN AG1hMTAwMDFhAHdyb25n\r\n")  # \0ma10001a\0wrong
        assert client.line().startswith(b"535")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_fail2ban_finds_exactly_the_failed_clients(tmp_path: Path, log_format: str) -> None:
    tool = require_tool("fail2ban-regex")
    log_file = tmp_path / "server.log"
    # 127.0.0.0/8 is trusted by default: no penalty delays, and cleartext is allowed
    settings = {"log": {"format": log_format, "destination": "file", "file": str(log_file)}}
    with served(tmp_path, [POP3, SMTP_SUBMISSION], settings, ACCOUNTS) as server:
        pop3, submission = server.ports
        expected: Counter[str] = Counter()
        for source, failures in (("127.0.0.2", 2), ("127.0.0.3", 1)):
            for _ in range(failures):
                assert _pop3_login(pop3, source, "ma10001a", "wrong").startswith(b"-ERR")
                expected[source] += 1
        for name in FORGED_NAMES:
            assert _pop3_login(pop3, "127.0.0.5", name, "wrong").startswith(b"-ERR")
            expected["127.0.0.5"] += 1
        _smtp_failed_login(submission, "127.0.0.7")
        expected["127.0.0.7"] += 1
        assert _pop3_login(pop3, "127.0.0.6", "ma10001a", "first-secret").startswith(b"+OK")
    # one line per attempt (a forged name may repeat the words inside its own line)
    login_lines = [line for line in log_file.read_text().splitlines() if "login result=" in line]
    assert len(login_lines) == sum(expected.values()) + 1
    result = subprocess.run(
        [tool, "-o", "ip", str(log_file), str(FILTER)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = Counter(result.stdout.split())
    assert found == expected


def test_the_jail_names_the_filter_and_a_log(tmp_path: Path) -> None:
    """fail2ban-regex reads the jail's filter by name from a fail2ban-like directory."""
    tool = require_tool("fail2ban-regex")
    config_dir = tmp_path / "fail2ban"
    (config_dir / "filter.d").mkdir(parents=True)
    shutil.copy(FILTER, config_dir / "filter.d" / "seikyou-auth.conf")
    jail = JAIL.read_text()
    assert "filter   = seikyou-auth\n" in jail
    assert "enabled  = true\n" in jail
    line = (
        "2026-11-30 20:15:02,117 INFO seikyou_auth.login: pop3 login result=failed"
        ' mechanism=USER client=192.0.2.7 tls=yes ms=2 user="ma10001a"\n'
    )
    sample = tmp_path / "sample.log"
    sample.write_text(line + line.replace("result=failed", "result=ok"))
    result = subprocess.run(
        [tool, "-o", "ip", "--config", str(config_dir), str(sample), "seikyou-auth"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["192.0.2.7"]
