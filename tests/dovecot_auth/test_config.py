"""``protocol = "auth"`` listeners in the config file: a UNIX socket or TCP on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.serverkit import toml_text

from seikyou_auth.server.config import ConfigError, load_config


def load(tmp_path: Path, *listeners: dict[str, Any], workers: int = 1) -> Any:
    path = tmp_path / "seikyou.toml"
    path.write_text(toml_text({"workers": workers, "listener": list(listeners)}))
    return load_config(str(path))


def test_unix_socket_listener(tmp_path: Path) -> None:
    config = load(tmp_path, {"protocol": "auth", "path": "/run/seikyou/auth", "mode": "0660"})
    (listener,) = config.listeners
    assert (listener.protocol, listener.path, listener.mode) == (
        "auth",
        Path("/run/seikyou/auth"),
        0o660,
    )
    assert listener.tls == "none" and listener.role is None
    assert listener.label == "auth on /run/seikyou/auth (mode 0660)"


def test_unix_socket_mode_defaults_to_owner_only(tmp_path: Path) -> None:
    (listener,) = load(tmp_path, {"protocol": "auth", "path": "/run/auth"}).listeners
    assert listener.mode == 0o600


def test_tcp_loopback_listener(tmp_path: Path) -> None:
    config = load(tmp_path, {"protocol": "auth", "address": "::1", "port": 12345})
    (listener,) = config.listeners
    assert (listener.address, listener.port, listener.path) == ("::1", 12345, None)


def test_unix_socket_with_workers_needs_no_port(tmp_path: Path) -> None:
    config = load(tmp_path, {"protocol": "auth", "path": "/run/auth"}, workers=2)
    assert config.workers == 2


@pytest.mark.parametrize(
    ("listener", "message"),
    [
        ({"protocol": "auth", "address": "0.0.0.0", "port": 1}, "loopback address"),
        ({"protocol": "auth", "address": "192.0.2.1", "port": 1}, "loopback address"),
        ({"protocol": "auth", "path": "relative/auth"}, "absolute path"),
        ({"protocol": "auth", "path": "/run/auth", "port": 1}, "a path or a port"),
        ({"protocol": "auth", "path": "/run/auth", "address": "127.0.0.1"}, "a path or a port"),
        ({"protocol": "auth", "path": "/run/auth", "mode": "660x"}, "octal mode"),
        ({"protocol": "auth", "path": "/run/auth", "mode": "99"}, "octal mode"),
        ({"protocol": "auth", "path": "/run/auth", "mode": "4755"}, "permission bits"),
        ({"protocol": "auth", "path": "/run/auth", "mode": 660}, "must be a string"),
        ({"protocol": "auth", "port": 1, "mode": "0660"}, "only a UNIX socket"),
        ({"protocol": "auth", "path": "/run/auth", "tls": "implicit"}, "tls"),
        ({"protocol": "auth", "path": "/run/auth", "role": "mx"}, "unknown key"),
        ({"protocol": "auth"}, "port: missing"),
        ({"protocol": "smtp", "role": "mx", "port": 25, "path": "/x"}, "unknown key"),
        ({"protocol": "imap", "port": 143}, "is not one of"),
    ],
)
def test_bad_auth_listeners(tmp_path: Path, listener: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, listener)


def test_two_listeners_on_one_socket_path(tmp_path: Path) -> None:
    listener = {"protocol": "auth", "path": "/run/auth"}
    with pytest.raises(ConfigError, match="two listeners on /run/auth"):
        load(tmp_path, listener, dict(listener))


def test_the_postfix_example_config_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "postfix" / "seikyou.toml"
    config = load_config(str(example))
    (auth,) = [listener for listener in config.listeners if listener.protocol == "auth"]
    assert auth.path == Path("/var/spool/postfix/private/seikyou-auth")
    assert auth.mode == 0o666
    # Below Postfix's 10 s wait for an answer on the auth socket.
    assert max(config.limits.failure_delays) < 10
