"""What a server builds from its ``[redis]`` table (or its absence): ``SharedState.build``."""

from __future__ import annotations

from dataclasses import dataclass

from seikyou_auth.server.config import Config
from seikyou_auth.server.policy import DEFAULT_FORGET_AFTER, FailureDelay, Policy
from seikyou_auth.server.shared.client import SharedRedis
from seikyou_auth.server.shared.lease import MailboxLeases
from seikyou_auth.server.shared.penalties import SharedFailureCounts

__all__ = ["SharedState"]

# Without Redis the lease is never stored anywhere; any positive value will do.
_NODE_LOCAL_LEASE = 30.0


@dataclass
class SharedState:
    """The failure delay and the mailbox leases of one server, shared through Redis or not."""

    redis: SharedRedis | None
    failure_delay: FailureDelay
    mailbox_leases: MailboxLeases

    @classmethod
    def build(cls, config: Config, policy: Policy) -> SharedState:
        delays = config.limits.failure_delays
        if config.redis is None:
            return cls(None, FailureDelay(delays, policy), MailboxLeases(None, _NODE_LOCAL_LEASE))
        redis = SharedRedis(config.redis.url, config.redis.key_prefix, config.redis.timeout)
        failure_delay = FailureDelay(
            delays,
            policy,
            DEFAULT_FORGET_AFTER,
            shared=SharedFailureCounts(redis, DEFAULT_FORGET_AFTER),
            per_account=config.redis.per_account_failures,
        )
        return cls(redis, failure_delay, MailboxLeases(redis, config.redis.lock_lease))

    async def close(self) -> None:
        """After the last session: let lock releases finish, then close the connection."""
        await self.mailbox_leases.close()
        if self.redis is not None:
            await self.redis.close()
