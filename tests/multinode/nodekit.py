"""Two ``seikyou-auth serve`` processes ("nodes") sharing one Redis, one PostgreSQL and one
data tree.

``two_nodes(tmp_path, redis, dsn)`` starts node A on 127.0.0.2 and node B on 127.0.0.3, each
with an MX (25-style, no TLS needed) and a POP3 listener, the accounts in one PostgreSQL
database (loaded with ``accounts migrate`` and ``accounts import``, as an operator moving from
a passwd-file does), one maildir tree and the same service host name, as nodes behind one DNS
name would be. No trusted networks,
so every client is penalised as an Internet client is. Clients bind their own source address
(``client_pop3``) so the nodes see one attacker or subscriber coming back.
"""

from __future__ import annotations

import contextlib
import poplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.redis import RedisServer
from support.serverkit import DOMAIN, free_ports, serve_subprocess, write_config, write_passwd

HOSTNAME = "mail.test.seikyou.ne.jp"
NODE_ADDRESSES = {"a": "127.0.0.2", "b": "127.0.0.3"}
SUBSCRIBER_SOURCE = "127.0.0.20"
ATTACKER_SOURCE = "127.0.0.66"
ACCOUNTS = {"ma10001a": "first-secret", "ma10002b": "second-secret"}
# The first three failures cost little, the fourth a lot: seen from outside without a clock
# finer than a second.
FAILURE_DELAYS = [0.01, 0.01, 0.01, 1.5]
LOCK_LEASE = 2.0


@dataclass
class Node:
    name: str
    address: str
    mx_port: int
    pop3_port: int
    directory: Path
    process: subprocess.Popen[str]

    @property
    def config(self) -> Path:
        return self.directory / "seikyou.toml"

    @property
    def log_text(self) -> str:
        return (self.directory / "serve.log").read_text()


class SourcePOP3(poplib.POP3):
    """``poplib.POP3`` from a chosen loopback source address."""

    def __init__(self, host: str, port: int, source: str) -> None:
        self.source = source
        super().__init__(host, port, timeout=15)

    def _create_socket(self, timeout: float) -> socket.socket:
        return socket.create_connection(
            (self.host, self.port), timeout, source_address=(self.source, 0)
        )


def client_pop3(node: Node, source: str = SUBSCRIBER_SOURCE) -> SourcePOP3:
    return SourcePOP3(node.address, node.pop3_port, source)


def login(node: Node, user: str = "ma10001a", password: str | None = None) -> SourcePOP3:
    client = client_pop3(node)
    try:
        client.apop(user, password if password is not None else ACCOUNTS[user])
    except BaseException:
        client.close()
        raise
    return client


def failed_login(node: Node, source: str, user: str = "ma10001a", password: str = "wrong") -> float:
    """A login that must fail with ``[AUTH]``; how long the answer took (the penalty)."""
    client = client_pop3(node, source)
    started = time.monotonic()
    with pytest.raises(poplib.error_proto) as refused:
        client.apop(user, password)
    elapsed = time.monotonic() - started
    client.close()
    assert b"[AUTH]" in refused.value.args[0]
    return elapsed


def accepts(node: Node, user: str, password: str, source: str) -> bool:
    """Whether a login succeeds (``[AUTH]`` is the only refusal expected)."""
    client = client_pop3(node, source)
    try:
        client.apop(user, password)
    except poplib.error_proto as refused:
        client.close()
        assert b"[AUTH]" in refused.args[0]
        return False
    client.quit()
    return True


def refused_in_use(node: Node) -> None:
    with pytest.raises(poplib.error_proto) as refused:
        login(node)
    assert b"[IN-USE]" in refused.value.args[0]


def cli(config: Path, *args: str, stdin: str = "") -> str:
    """``seikyou-auth ARGS --config CONFIG``, which must succeed; its stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "seikyou_auth", *args, "--config", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def node_settings(
    data_dir: Path,
    address: str,
    ports: list[int],
    redis: RedisServer,
    redis_extra: Mapping[str, Any],
    dsn: str,
) -> dict[str, Any]:
    return {
        "hostname": HOSTNAME,
        "domain": DOMAIN,
        "data_dir": str(data_dir),
        "trusted_networks": [],
        "accounts": {"store": "postgresql", "dsn": dsn},
        "limits": {"failure_delays": FAILURE_DELAYS, "shutdown_grace": 2.0},
        "redis": {
            "url": redis.url,
            "key_prefix": "twonodes:",
            "timeout": 0.5,
            "lock_lease": LOCK_LEASE,
            **redis_extra,
        },
        "listener": [
            {"protocol": "smtp", "role": "mx", "address": address, "port": ports[0], "tls": "none"},
            {"protocol": "pop3", "address": address, "port": ports[1], "tls": "none"},
        ],
    }


@contextlib.contextmanager
def two_nodes(
    tmp_path: Path, redis: RedisServer, dsn: str, redis_extra: Mapping[str, Any] | None = None
) -> Iterator[tuple[Node, Node]]:
    data_dir = tmp_path / "shared-data"
    passwd = tmp_path / "passwd-to-import"
    write_passwd(passwd, ACCOUNTS)
    with contextlib.ExitStack() as stack:
        nodes = []
        for name, address in NODE_ADDRESSES.items():
            directory = tmp_path / f"node-{name}"
            directory.mkdir()
            ports = free_ports(2, address)
            config = write_config(
                directory / "seikyou.toml",
                node_settings(data_dir, address, ports, redis, redis_extra or {}, dsn),
            )
            if not nodes:
                cli(config, "accounts", "migrate")
                cli(config, "accounts", "import", str(passwd))
            process = stack.enter_context(serve_subprocess(directory, config, expect_lines=2))
            nodes.append(Node(name, address, ports[0], ports[1], directory, process))
        yield nodes[0], nodes[1]
