"""A real redis-server per test (``redis``), from ``tests/support/redis.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.redis import RedisServer, redis_server


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server
