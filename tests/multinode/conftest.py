"""A real redis-server per test (``redis``, ``tests/support/redis.py``) and a fresh database on
the session's real PostgreSQL (``postgresql_dsn``, ``tests/support/postgresql.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.postgresql import postgresql_dsn, postgresql_session
from support.redis import RedisServer, redis_server

__all__ = ["postgresql_dsn", "postgresql_session", "redis"]


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server
