"""The server's one Redis connection, bounded in time, with the node-local fallback rule.

Every Redis command of the server goes through ``SharedRedis.run``: it answers within
``timeout`` or gives ``None``, and the caller then does what a single node does (its own
penalties, its own lock). After a failure Redis is left alone for ``retry_interval``, so a
hung Redis costs one login per interval a ``timeout``, not every login. The outage is
logged once per ``warning_interval``, and once more when Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from seikyou_auth.server.config import ConfigError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["MISSING_EXTRA", "SharedRedis"]

log = logging.getLogger("seikyou_auth.shared")

MISSING_EXTRA = "[redis] needs the 'redis' extra: pip install 'seikyou-auth[redis]'"
T = TypeVar("T")


def _where(url: str) -> str:
    # Only host and port: the URL may carry a password.
    try:
        parts = urlsplit(url)
        return f"{parts.hostname or parts.path}:{parts.port or 6379}"
    except ValueError:
        return "the configured address"


class SharedRedis:
    """``run(command)``: the command's answer, or ``None`` when Redis cannot give it in time."""

    def __init__(
        self,
        url: str,
        key_prefix: str,
        timeout: float,
        *,
        retry_interval: float = 1.0,
        warning_interval: float = 60.0,
    ) -> None:
        try:
            from redis.asyncio import Redis
            from redis.exceptions import RedisError
        except ImportError:
            raise ConfigError(MISSING_EXTRA) from None
        try:
            # redis-py's own retries would multiply the timeout; one try, then node-local.
            self.client: Redis = Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry_on_timeout=False,
                retry_on_error=[],
            )
        except ValueError as error:
            raise ConfigError(f"redis.url: {error}") from None
        # What "Redis cannot answer" is; anything else is a bug and must not pass for an outage.
        self._trouble: tuple[type[Exception], ...] = (RedisError, OSError, TimeoutError)
        self.key_prefix = key_prefix
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.warning_interval = warning_interval
        self.where = _where(url)
        self._skip_until = 0.0
        self._next_warning = 0.0
        self._down = False

    def script(self, source: str) -> AsyncScript:
        """A Lua script Redis runs atomically (EVALSHA, loaded again after a Redis restart)."""
        return self.client.register_script(source)

    def key(self, name: str) -> str:
        return self.key_prefix + name

    @property
    def down(self) -> bool:
        """Whether the last command failed (callers are working node-locally)."""
        return self._down

    async def run(self, command: Callable[[Redis], Awaitable[T]]) -> T | None:
        now = time.monotonic()
        if self._down and now < self._skip_until:
            return None
        try:
            answer = await asyncio.wait_for(command(self.client), self.timeout)
        except self._trouble as error:
            self._failed(error)
            return None
        if self._down:
            self._down = False
            self._next_warning = 0.0
            log.warning("redis at %s answers again: penalties and POP3 locks shared", self.where)
        return answer

    def _failed(self, error: Exception) -> None:
        now = time.monotonic()  # after the timeout, so the next try is a full interval away
        self._down = True
        self._skip_until = now + self.retry_interval
        if now >= self._next_warning:
            self._next_warning = now + self.warning_interval
            reason = type(error).__name__ if isinstance(error, TimeoutError) else str(error)
            log.warning(
                "redis at %s unavailable (%s): penalties and POP3 locks node-local until it"
                " answers (this warning at most once per %.0f s)",
                self.where,
                reason.splitlines()[0][:200] if reason else type(error).__name__,
                self.warning_interval,
            )

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.client.aclose(), self.timeout)
        except self._trouble:  # closing a dead connection at shutdown
            log.debug("redis connection closed with an error", exc_info=True)
