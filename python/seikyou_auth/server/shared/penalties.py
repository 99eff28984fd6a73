"""Failed-login counters in Redis, so every node delays an address (or account) alike.

One counter per key, ``INCR`` and ``PEXPIRE`` in one Lua script: the count and its expiry
change together or not at all, whichever node is counting. The expiry is renewed by each
failure, which is ``FailureDelay``'s rule: ``forget_after`` seconds without a failure start
the count over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seikyou_auth.server.shared.client import SharedRedis

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["SharedFailureCounts"]

_COUNT_FAILURE = """
local count = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return count
"""


class SharedFailureCounts:
    """``add``/``get``/``forget`` the failures of a key (``addr:...``, ``account:...``);
    ``None`` when Redis cannot answer."""

    def __init__(self, redis: SharedRedis, forget_after: float) -> None:
        self.redis = redis
        self._expiry_ms = max(1, int(forget_after * 1000))
        self._count_failure = redis.script(_COUNT_FAILURE)

    async def add(self, key: str) -> int | None:
        """Count one more failure; the count including it."""
        shared_key = self.redis.key("fail:" + key)
        count = await self.redis.run(
            lambda _client: self._count_failure(keys=[shared_key], args=[self._expiry_ms])
        )
        return None if count is None else int(count)

    async def get(self, key: str) -> int | None:
        shared_key = self.redis.key("fail:" + key)

        async def count(client: Redis) -> int:
            value = await client.get(shared_key)
            return 0 if value is None else int(value)

        return await self.redis.run(count)

    async def forget(self, key: str) -> None:
        shared_key = self.redis.key("fail:" + key)
        await self.redis.run(lambda client: client.delete(shared_key))
