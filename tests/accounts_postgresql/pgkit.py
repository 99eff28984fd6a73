"""Helpers for the PostgreSQL store tests: run SQL, make stores, poll a condition."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from seikyou_auth.accounts.postgresql import PostgresqlStore
from seikyou_auth.accounts.sql_schema import migrate

DOMAIN = "seikyou.ne.jp"


async def execute(dsn: str, sql: str, *args: Any) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql, *args)
    finally:
        await connection.close()


async def migrated(dsn: str) -> tuple[int, int]:
    connection = await asyncpg.connect(dsn)
    try:
        return await migrate(connection)
    finally:
        await connection.close()


async def started_store(dsn: str, **settings: Any) -> PostgresqlStore:
    store = PostgresqlStore(dsn, domain=DOMAIN, **settings)
    await store.start()
    if store.cache.enabled:
        assert await store.wait_listening(10)
    return store


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout: float) -> bool:
    """Poll ``condition`` every 10 ms; whether it held within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return True
        await asyncio.sleep(0.01)
    return False


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def auth_plain(port: int, user: str, password: str) -> int:
    """The reply code to AUTH PLAIN on a submission port without TLS (loopback is trusted)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.ehlo("client.example")
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        code, _ = client.docmd("AUTH", f"PLAIN {token}")
        return code
