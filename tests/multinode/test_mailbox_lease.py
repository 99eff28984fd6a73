"""The POP3 lock across nodes: ``MailboxLeases`` of two "nodes" on one real Redis."""

from __future__ import annotations

import asyncio

from support.redis import RedisServer

from seikyou_auth.server.shared import MailboxLeases, SharedRedis

LEASE = 0.6  # renewed every 0.2 s
PREFIX = "lease-test:"


def node(redis: RedisServer) -> MailboxLeases:
    shared = SharedRedis(redis.url, PREFIX, 0.5, retry_interval=0.1, warning_interval=60.0)
    return MailboxLeases(shared, LEASE)


async def close(*nodes: MailboxLeases) -> None:
    for each in nodes:
        await each.close()
        assert each.redis is not None
        await each.redis.close()


def test_a_held_lease_refuses_other_nodes_until_released(redis: RedisServer) -> None:
    async def scenario() -> None:
        node_a, node_b = node(redis), node(redis)
        lease = await node_a.acquire("ma10001a")
        assert lease is not None and lease.shared
        assert await node_b.acquire("ma10001a") is None
        other = await node_b.acquire("ma10002b")  # another mailbox is free
        assert other is not None and other.shared
        lease.release()
        await node_a.close()  # the compare-and-delete has run
        taken = await node_b.acquire("ma10001a")
        assert taken is not None and taken.shared
        taken.release()
        other.release()
        await close(node_a, node_b)

    asyncio.run(scenario())


def test_a_living_session_keeps_its_lease_beyond_the_lease_time(redis: RedisServer) -> None:
    async def scenario() -> None:
        node_a, node_b = node(redis), node(redis)
        lease = await node_a.acquire("ma10001a")
        assert lease is not None
        await asyncio.sleep(LEASE * 3)  # three lease times: renewed all along
        assert await node_b.acquire("ma10001a") is None
        assert node_a.redis is not None
        ttl = await node_a.redis.client.pttl(PREFIX + "pop3-lock:ma10001a")
        assert 0 < ttl <= LEASE * 1000
        lease.release()
        await close(node_a, node_b)

    asyncio.run(scenario())


def test_a_crashed_holder_lease_expires(redis: RedisServer) -> None:
    async def scenario() -> None:
        node_a, node_b = node(redis), node(redis)
        lease = await node_a.acquire("ma10001a")
        assert lease is not None
        # A crash: the renewal stops and no release ever comes.
        assert lease._renewal is not None
        lease._renewal.cancel()
        assert await node_b.acquire("ma10001a") is None
        await asyncio.sleep(LEASE + 0.2)
        taken = await node_b.acquire("ma10001a")
        assert taken is not None and taken.shared
        taken.release()
        await close(node_a, node_b)

    asyncio.run(scenario())


def test_a_stale_release_never_frees_another_holder_lock(redis: RedisServer) -> None:
    async def scenario() -> None:
        node_a, node_b = node(redis), node(redis)
        stale = await node_a.acquire("ma10001a")
        assert stale is not None and stale._renewal is not None
        stale._renewal.cancel()  # A stalls past its lease...
        await asyncio.sleep(LEASE + 0.2)
        fresh = await node_b.acquire("ma10001a")
        assert fresh is not None
        stale.release()  # ...and releases late: the token is not its own any more
        await node_a.close()
        assert await node_a.acquire("ma10001a") is None
        fresh.release()
        await close(node_a, node_b)

    asyncio.run(scenario())


def test_redis_down_gives_node_local_leases_that_join_when_it_returns(
    redis: RedisServer,
) -> None:
    async def scenario() -> None:
        node_a, node_b = node(redis), node(redis)
        redis.stop()
        local = await node_a.acquire("ma10001a")
        assert local is not None and not local.shared  # the login goes on, node-local lock only
        redis.start()
        await asyncio.sleep(LEASE)  # a renewal or two: it takes the key now
        assert local.shared
        assert await node_b.acquire("ma10001a") is None
        local.release()
        await close(node_a, node_b)

    asyncio.run(scenario())


def test_without_redis_every_lease_is_node_local() -> None:
    async def scenario() -> None:
        leases = MailboxLeases(None, LEASE)
        first = await leases.acquire("ma10001a")
        second = await leases.acquire("ma10001a")
        # Exclusion on one node is the flock's job (Mailbox.lock), not the lease's.
        assert first is not None and not first.shared
        assert second is not None and not second.shared
        first.release()
        second.release()
        await leases.close()

    asyncio.run(scenario())


def test_a_login_on_another_node_right_after_quit_is_not_refused(redis: RedisServer) -> None:
    async def scenario() -> None:
        node_a, node_b = node(redis), node(redis)
        lease = await node_a.acquire("ma10001a")
        assert lease is not None
        lease.release()  # QUIT: the key is freed in the background...
        taken = await node_b.acquire("ma10001a")  # ...while the client is already on B
        assert taken is not None and taken.shared
        taken.release()
        await close(node_a, node_b)

    asyncio.run(scenario())
