"""server/app.py: how ``seikyou-auth serve`` reports a config it cannot use or a port it
cannot take: one line and exit status 2."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from support.serverkit import write_config

from seikyou_auth.server.app import main


def test_main_prints_one_line_and_returns_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[smtp]\nbogus = true\n")
    assert main(str(path)) == 2
    err = capsys.readouterr().err
    assert err == f"seikyou-auth: {path}: smtp.bogus: unknown key\n"


def test_main_reports_a_busy_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        listener = {"protocol": "smtp", "role": "mx", "address": "127.0.0.1", "port": port}
        path = write_config(
            tmp_path / "busy.toml", {"data_dir": str(tmp_path / "d"), "listener": [listener]}
        )
        assert main(str(path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"seikyou-auth: cannot listen on 127.0.0.1:{port}: Address already in use"]


def test_serve_with_a_bad_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[[listener]]\nprotocol = 'smtp'\nrole = 'mx'\nport = 99999\n")
    result = subprocess.run(
        ["python", "-m", "seikyou_auth", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"seikyou-auth: {config}: listener #1.port: 99999 is out of range (0..65535)"
    ]
