"""``seikyou-auth serve`` with two worker processes on PostgreSQL: each worker has its own pool
and cache (made after the fork), and ``user passwd`` takes effect in both within a second."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from pgkit import auth_plain, migrated
from support.serverkit import FAST_LIMITS, free_port, serve_subprocess, write_config

USER = "ma10001a"


def test_a_new_password_reaches_every_worker_within_a_second(
    tmp_path: Path, postgresql_dsn: str
) -> None:
    asyncio.run(migrated(postgresql_dsn))
    port = free_port()
    config = write_config(
        tmp_path / "seikyou.toml",
        {
            "hostname": "mail.test.seikyou.ne.jp",
            "domain": "seikyou.ne.jp",
            "data_dir": str(tmp_path / "data"),
            "workers": 2,
            "limits": dict(FAST_LIMITS),
            "accounts": {"store": "postgresql", "dsn": postgresql_dsn},
            "listener": [
                {
                    "protocol": "smtp",
                    "role": "submission",
                    "address": "127.0.0.1",
                    "port": port,
                    "tls": "none",
                }
            ],
        },
    )

    def user(action: str, password: str) -> None:
        command = [sys.executable, "-m", "seikyou_auth", "user", action, USER]
        subprocess.run(
            [*command, "--scheme", "PLAIN", "--password-stdin", "--config", str(config)],
            input=f"{password}\n",
            text=True,
            check=True,
            capture_output=True,
            timeout=60,
        )

    user("add", "old")
    with serve_subprocess(tmp_path, config, expect_lines=1):
        # Enough connections that SO_REUSEPORT hands both workers some, each caching "old".
        assert [auth_plain(port, USER, "old") for _ in range(20)] == [235] * 20
        user("passwd", "new")  # returns once committed
        time.sleep(1.0)
        assert [auth_plain(port, USER, "new") for _ in range(20)] == [235] * 20
        assert auth_plain(port, USER, "old") == 535
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log
