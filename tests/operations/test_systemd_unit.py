"""``contrib/systemd``: ``systemd-analyze verify`` accepts the unit; it says what the issue asks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from support.tools import require_tool

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "contrib" / "systemd" / "seikyou-auth.service"
LOGROTATE = REPO / "contrib" / "systemd" / "seikyou-auth.logrotate"
INSTALLED_PATH = "/usr/local/bin/seikyou-auth"


def _settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def _verify(unit_text: str, directory: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` on a copy whose ExecStart is this machine's real script
    (verify insists that the binary exists)."""
    script = shutil.which("seikyou-auth") or str(Path(sys.executable).parent / "seikyou-auth")
    assert Path(script).exists(), "the seikyou-auth script is not installed"
    directory.mkdir(exist_ok=True)
    copy = directory / "seikyou-auth.service"
    copy.write_text(unit_text.replace(INSTALLED_PATH, script))
    return subprocess.run(
        [require_tool("systemd-analyze"), "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    result = _verify(UNIT.read_text(), tmp_path / "unit")
    assert result.returncode == 0, result.stderr
    # warnings (an unknown or misspelt setting) go to stderr with rc 0: none allowed
    assert "seikyou-auth.service" not in result.stdout + result.stderr, result.stderr


def test_verify_would_catch_a_mistake(tmp_path: Path) -> None:
    """The check above can fail: a misspelt value is reported."""
    broken = UNIT.read_text().replace("Type=notify", "Type=notyfy")
    result = _verify(broken, tmp_path / "broken")
    assert "notyfy" in result.stderr


def test_the_unit_runs_unprivileged_with_notify_and_reload() -> None:
    settings = _settings(UNIT.read_text())
    assert settings["User"] == ["seikyou-auth"]
    assert settings["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
    assert settings["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    assert settings["Type"] == ["notify"]
    # the main process notifies for its workers (sdnotify.WorkerReports)
    assert settings["NotifyAccess"] == ["main"]
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert settings["ExecStart"][0].startswith(INSTALLED_PATH + " serve --config ")
    for hardening in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "PrivateDevices"):
        assert settings[hardening] == ["yes"], hardening
    assert settings["ProtectSystem"] == ["strict"]
    assert settings["ReadWritePaths"] == ["/var/lib/seikyou-auth"]


def test_logrotate_snippet_rotates_the_documented_file() -> None:
    directives = [
        line.strip() for line in LOGROTATE.read_text().splitlines() if not line.startswith("#")
    ]
    assert "/var/log/seikyou-auth/seikyou-auth.log {" in directives
    # the server reopens a moved file itself (logsetup): truncating would lose lines
    assert "copytruncate" not in directives
    assert "postrotate" not in directives
    assert "create 0640 seikyou-auth seikyou-auth" in directives
