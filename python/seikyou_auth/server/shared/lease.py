"""The POP3 mailbox lock across nodes: a Redis key held with a lease.

A session takes ``pop3-lock:<account>`` with ``SET NX PX`` and a random token, renews it
every third of the lease while it lives, and at its end deletes it only if the token is
still its own (a compare-and-delete script), so a session that lost its lease never frees
another's. A node that dies stops renewing: its lock is gone after at most one lease.

When Redis cannot answer, the session goes on under the node-local lock alone (the
caller's ``flock``), and its renewal loop takes the key as soon as Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING

from seikyou_auth.server.shared.client import SharedRedis

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["Lease", "MailboxLeases"]

log = logging.getLogger("seikyou_auth.shared")

# Take the key if it is free or already ours, and (re)start its lease: renewal and the late
# take-over after an outage are one rule.
_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


# A session that ends on one node frees its key in the background, after its client has had
# the QUIT reply; the same client logging in on another node at once waits this much for it.
_RELEASE_GRACE = (0.05, 0.1, 0.2)


class Lease:
    """One session's hold on a mailbox across nodes; ``release()`` when the session ends."""

    def __init__(self, leases: MailboxLeases, key: str, token: str, shared: bool) -> None:
        self._leases = leases
        self.key = key
        self.token = token
        self.shared = shared  # False while only the node-local lock protects the mailbox
        self._renewal: asyncio.Task[None] | None = None

    def start_renewing(self) -> None:
        self._renewal = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        interval = self._leases.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            held = await self._leases.hold(self.key, self.token)
            if held is None:
                continue
            if not held and self.shared:
                log.warning(
                    "POP3 lock %s was taken by another node while its lease lapsed", self.key
                )
            self.shared = held

    def release(self) -> None:
        """Stop renewing and free the key (in the background: a session's end never waits)."""
        if self._renewal is not None:
            self._renewal.cancel()
            self._renewal = None
        self._leases.release_later(self)


class MailboxLeases:
    """Hands out ``Lease``s; ``redis=None`` is a single node (every lease is node-local)."""

    def __init__(self, redis: SharedRedis | None, lease_seconds: float) -> None:
        self.redis = redis
        self.lease_seconds = lease_seconds
        self._lease_ms = max(1, int(lease_seconds * 1000))
        self._releasing: set[asyncio.Task[None]] = set()
        if redis is not None:
            self._hold = redis.script(_HOLD)
            self._release = redis.script(_RELEASE)

    async def acquire(self, account: str) -> Lease | None:
        """The account's lease, or ``None`` while another node's session holds it."""
        if self.redis is None:
            return Lease(self, "", "", shared=False)
        key = self.redis.key("pop3-lock:" + account)
        token = secrets.token_hex(16)

        async def take(client: Redis) -> bool:
            # SET NX answers nil when the key is held: not to be mistaken for "no answer".
            return bool(await client.set(key, token, nx=True, px=self._lease_ms))

        taken = await self.redis.run(take)
        for pause in _RELEASE_GRACE:
            if taken is not False:
                break
            await asyncio.sleep(pause)
            taken = await self.redis.run(take)
        if taken is False:
            return None
        lease = Lease(self, key, token, shared=taken is not None)
        lease.start_renewing()
        return lease

    async def hold(self, key: str, token: str) -> bool | None:
        """Renew (or take again) ``key`` for ``token``; ``None`` when Redis cannot answer."""
        assert self.redis is not None
        held = await self.redis.run(
            lambda _client: self._hold(keys=[key], args=[token, self._lease_ms])
        )
        return None if held is None else bool(held)

    def release_later(self, lease: Lease) -> None:
        if self.redis is None or not lease.key:
            return
        task = asyncio.get_running_loop().create_task(self._release_key(lease.key, lease.token))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def _release_key(self, key: str, token: str) -> None:
        assert self.redis is not None
        await self.redis.run(lambda _client: self._release(keys=[key], args=[token]))

    async def close(self) -> None:
        """Wait for releases under way (at shutdown, before the connection closes)."""
        if self._releasing:
            await asyncio.wait(list(self._releasing), timeout=self.lease_seconds)
