"""Login penalties shared through a real Redis by two ``FailureDelay`` instances ("nodes")."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import time

import pytest
from support.redis import RedisServer

from seikyou_auth.server.policy import FailureDelay, Policy
from seikyou_auth.server.shared import SharedFailureCounts, SharedRedis

# Only the fourth step sleeps, so the first three failures cost nothing and the fourth is seen.
DELAYS = (0.0, 0.0, 0.0, 0.3)
FORGET_AFTER = 60.0
ATTACKER = "203.0.113.7"
PREFIX = "test:"


def node(
    redis: RedisServer,
    *,
    per_account: bool = False,
    timeout: float = 0.5,
    retry_interval: float = 0.2,
) -> FailureDelay:
    shared = SharedRedis(
        redis.url, PREFIX, timeout, retry_interval=retry_interval, warning_interval=60.0
    )
    return FailureDelay(
        DELAYS,
        Policy([ipaddress.ip_network("10.0.0.0/8")]),
        FORGET_AFTER,
        shared=SharedFailureCounts(shared, FORGET_AFTER),
        per_account=per_account,
    )


def shared_count(delay: FailureDelay, key: str) -> int | None:
    assert delay.shared is not None
    return asyncio.run(delay.shared.get(key))


async def timed_failure(delay: FailureDelay, addr: str, account: str | None = None) -> float:
    started = time.monotonic()
    await delay.failed(addr, account)
    return time.monotonic() - started


async def close(*nodes: FailureDelay) -> None:
    for each in nodes:
        assert each.shared is not None
        await each.shared.redis.close()


def test_failures_on_one_node_grow_the_delay_on_the_other(redis: RedisServer) -> None:
    async def scenario() -> tuple[float, float, int | None]:
        node_a, node_b = node(redis), node(redis)
        for _ in range(3):
            await node_a.failed(ATTACKER)
        assert not node_b.is_penalised(ATTACKER)  # B has not seen the address yet
        fourth = await timed_failure(node_b, ATTACKER)
        assert node_b.is_penalised(ATTACKER)
        assert node_b.next_delay(ATTACKER) == DELAYS[-1]
        assert node_b.shared is not None
        count = await node_b.shared.get("addr:" + ATTACKER)
        await close(node_a, node_b)
        return fourth, node_a.next_delay(ATTACKER), count

    fourth, a_view, count = asyncio.run(scenario())
    assert fourth >= DELAYS[3] - 0.01, "the fourth failure (on B) waits the fourth step"
    assert count == 4
    assert a_view == DELAYS[3]  # A counted its own three


def test_counter_expires_and_counts_atomically(redis: RedisServer) -> None:
    async def scenario() -> tuple[int | None, int]:
        node_a, node_b = node(redis), node(redis)
        # 40 concurrent failures from one address, half on each node: no increment is lost.
        await asyncio.gather(
            *(
                (node_a if index % 2 else node_b).shared.add("addr:198.51.100.1")  # type: ignore[union-attr]
                for index in range(40)
            )
        )
        assert node_a.shared is not None
        count = await node_a.shared.get("addr:198.51.100.1")
        ttl = await node_a.shared.redis.client.pttl(PREFIX + "fail:addr:198.51.100.1")
        await close(node_a, node_b)
        return count, ttl

    count, ttl = asyncio.run(scenario())
    assert count == 40
    assert 0 < ttl <= FORGET_AFTER * 1000


def test_success_on_one_node_clears_the_count_everywhere(redis: RedisServer) -> None:
    async def scenario() -> int | None:
        node_a, node_b = node(redis), node(redis)
        for _ in range(3):
            await node_a.failed(ATTACKER)
        node_b.reset(ATTACKER)
        await asyncio.gather(*node_b._forgetting)
        assert node_b.shared is not None
        count = await node_b.shared.get("addr:" + ATTACKER)
        await close(node_a, node_b)
        return count

    assert asyncio.run(scenario()) == 0


def test_trusted_networks_are_neither_counted_nor_delayed(redis: RedisServer) -> None:
    async def scenario() -> tuple[int | None, bool]:
        node_a = node(redis)
        for _ in range(5):
            await node_a.failed("10.1.2.3", "ma10001a")
        assert node_a.shared is not None
        count = await node_a.shared.get("addr:10.1.2.3")
        penalised = node_a.is_penalised("10.1.2.3")
        await close(node_a)
        return count, penalised

    assert asyncio.run(scenario()) == (0, False)


def test_hold_on_another_node_waits_the_shared_penalty(redis: RedisServer) -> None:
    async def scenario() -> float:
        node_a, node_b = node(redis), node(redis)
        for _ in range(3):
            await node_a.failed(ATTACKER)
        started = time.monotonic()
        await node_b.hold(ATTACKER)
        held = time.monotonic() - started
        await close(node_a, node_b)
        return held

    assert asyncio.run(scenario()) >= DELAYS[3] - 0.01


@pytest.mark.parametrize("per_account", [True, False])
def test_per_account_accounting_slows_guessing_from_many_addresses(
    redis: RedisServer, per_account: bool
) -> None:
    async def scenario() -> tuple[float, int | None]:
        node_a, node_b = node(redis, per_account=per_account), node(redis, per_account=per_account)
        # One guess per address, spread over both nodes, the name in both of its forms.
        for index in range(3):
            guesser = node_a if index % 2 else node_b
            name = "MA10001A@seikyou.ne.jp" if index % 2 else "ma10001a"
            await guesser.failed(f"198.51.100.{10 + index}", name)
        fourth = await timed_failure(node_a, "198.51.100.99", "ma10001a")
        assert node_a.shared is not None
        keys = await node_a.shared.redis.client.keys(PREFIX + "fail:account:*")
        await close(node_a, node_b)
        return fourth, len(keys)

    fourth, account_keys = asyncio.run(scenario())
    if per_account:
        assert fourth >= DELAYS[3] - 0.01
        assert account_keys == 1  # one digest per account; the name itself is not stored
    else:
        assert account_keys == 0


def test_redis_down_logins_continue_with_one_warning_then_rejoin(
    redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="seikyou_auth.shared")

    async def scenario() -> None:
        node_a, node_b = node(redis), node(redis)
        redis.stop()
        # Node-local penalties while Redis is away: A's four failures still grow A's delay.
        for _ in range(3):
            await node_a.failed(ATTACKER)
        assert await timed_failure(node_a, ATTACKER) >= DELAYS[3] - 0.01
        for index in range(20):
            await node_b.failed(f"198.51.100.{index}")
        warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(warnings) == 2, "one warning per node, not one per login"
        assert "node-local" in warnings[0].getMessage()
        assert node_a.shared is not None
        assert node_a.shared.redis.down

        redis.start()
        await asyncio.sleep(0.3)  # past retry_interval
        for _ in range(3):
            await node_a.failed("192.0.2.50")
        assert not node_a.shared.redis.down
        assert await timed_failure(node_b, "192.0.2.50") >= DELAYS[3] - 0.01
        back = [r for r in caplog.records if "answers again" in r.getMessage()]
        assert len(back) == 2
        await close(node_a, node_b)

    asyncio.run(scenario())


def test_hung_redis_cannot_stall_a_login_beyond_the_timeout(redis: RedisServer) -> None:
    assert redis.process is not None
    pid = redis.process.pid

    async def scenario() -> list[float]:
        node_a = node(redis, timeout=0.3, retry_interval=30.0)
        await node_a.failed("192.0.2.1")  # connected before Redis hangs
        os.kill(pid, signal.SIGSTOP)
        try:
            return [await timed_failure(node_a, "192.0.2.2") for _ in range(5)]
        finally:
            os.kill(pid, signal.SIGCONT)
            await close(node_a)

    elapsed = asyncio.run(scenario())
    # The bound: no login waits on a hung Redis for more than the timeout (generous
    # margin for a loaded machine); after the first, Redis is not even asked for a while.
    assert max(elapsed) < 0.3 + 2.0
    assert sum(elapsed) < 0.3 + 2.0
