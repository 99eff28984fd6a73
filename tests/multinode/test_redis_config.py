"""The ``[redis]`` table: its checks, and a server without the ``redis`` extra."""

from __future__ import annotations

import os
import poplib
import subprocess
from pathlib import Path

import pytest
from support.serverkit import free_port, serve_command, serve_subprocess, write_config

from seikyou_auth.server.config import ConfigError, RedisConfig, load_config


def config_with(tmp_path: Path, redis: dict[str, object]) -> str:
    return str(write_config(tmp_path / "seikyou.toml", {"redis": redis}))


def test_defaults_and_every_key(tmp_path: Path) -> None:
    assert load_config(config_with(tmp_path, {"url": "redis://10.0.0.5:6379/2"})).redis == (
        RedisConfig(url="redis://10.0.0.5:6379/2")
    )
    loaded = load_config(
        config_with(
            tmp_path,
            {
                "url": "unix:///run/redis/redis.sock",
                "key_prefix": "mail-a:",
                "timeout": 0.25,
                "lock_lease": 10,
                "per_account_failures": True,
            },
        )
    ).redis
    assert loaded == RedisConfig("unix:///run/redis/redis.sock", "mail-a:", 0.25, 10.0, True)
    assert load_config(None).redis is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, "redis.url: missing"),
        ({"url": "http://redis:6379"}, "redis.url: must start with redis://"),
        ({"url": "redis://x", "timeout": 0}, "redis.timeout: must be > 0 seconds"),
        ({"url": "redis://x", "lock_lease": -1}, "redis.lock_lease: must be > 0 seconds"),
        ({"url": "redis://x", "per_account_failures": "yes"}, "must be true or false"),
        ({"url": "redis://x", "lease": 5}, "redis.lease: unknown key"),
    ],
)
def test_bad_tables_are_one_line_errors(
    tmp_path: Path, table: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(config_with(tmp_path, table))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def without_redis(tmp_path: Path) -> dict[str, str]:
    """An environment where ``import redis`` fails, as without the ``redis`` extra."""
    blocked = tmp_path / "blocked"
    (blocked / "redis").mkdir(parents=True)
    (blocked / "redis" / "__init__.py").write_text("raise ImportError('not installed')\n")
    current = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(blocked) + (os.pathsep + current if current else "")}


def pop3_settings(tmp_path: Path, port: int = 0) -> dict[str, object]:
    return {
        "data_dir": str(tmp_path / "data"),
        "listener": [{"protocol": "pop3", "address": "127.0.0.1", "port": port, "tls": "none"}],
    }


def test_redis_config_without_the_extra_is_a_one_line_error(tmp_path: Path) -> None:
    settings = {**pop3_settings(tmp_path), "redis": {"url": "redis://127.0.0.1:1/0"}}
    config = write_config(tmp_path / "seikyou.toml", settings)
    result = subprocess.run(
        serve_command(config),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **without_redis(tmp_path)},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "seikyou-auth: [redis] needs the 'redis' extra: pip install 'seikyou-auth[redis]'"
    ]


def test_serve_needs_no_redis_without_the_table(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path / "seikyou.toml", pop3_settings(tmp_path, port))
    with serve_subprocess(tmp_path, config, env=without_redis(tmp_path)):
        client = poplib.POP3("127.0.0.1", port, timeout=10)
        assert client.getwelcome().startswith(b"+OK")
        client.quit()
