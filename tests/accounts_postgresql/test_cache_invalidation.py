"""The cache stays right: changes reach every store within a second through LISTEN/NOTIFY,
TTLs expire, and a lost listener empties and bypasses the cache until it is back."""

from __future__ import annotations

import asyncio

from pgkit import execute, migrated, started_store, until
from support.postgresql import PostgresqlServer, postgresql_server

from seikyou_auth.accounts.postgresql import PostgresqlStore
from seikyou_auth.errors import StoreUnavailable


def test_a_change_reaches_two_stores_within_a_second(postgresql_dsn: str) -> None:
    async def scenario() -> None:
        await migrated(postgresql_dsn)
        await execute(
            postgresql_dsn, "INSERT INTO seikyou.accounts (name, password) VALUES ('a', '{PLAIN}1')"
        )
        node_a = await started_store(postgresql_dsn)
        node_b = await started_store(postgresql_dsn)
        try:
            for node in (node_a, node_b):
                account = await node.lookup("a")
                assert account is not None and account.password == "{PLAIN}1"
                assert await node.lookup("newcomer") is None
                assert len(node.cache) == 2
            # A writer other than us (a billing system) changes the table directly.
            await execute(postgresql_dsn, "UPDATE seikyou.accounts SET password = '{PLAIN}2'")
            await execute(
                postgresql_dsn,
                "INSERT INTO seikyou.accounts (name, password) VALUES ('newcomer', '{PLAIN}n')",
            )

            async def both_see_it() -> bool:
                for node in (node_a, node_b):
                    account = await node.lookup("a")
                    if account is None or account.password != "{PLAIN}2":
                        return False
                    if await node.lookup("newcomer") is None:
                        return False
                return True

            assert await until(both_see_it, 1.0)
            await execute(postgresql_dsn, "DELETE FROM seikyou.accounts WHERE name = 'a'")
            assert await until(lambda: node_a.cache.get("a") is None, 1.0)
            assert await node_b.lookup("a") is None or await until(
                lambda: node_b.cache.get("a") is None, 1.0
            )
            assert await node_b.lookup("a") is None
            await execute(postgresql_dsn, "TRUNCATE seikyou.accounts")
            assert await until(lambda: len(node_a.cache) == 0 and len(node_b.cache) == 0, 1.0)
        finally:
            await node_a.close()
            await node_b.close()

    asyncio.run(scenario())


def test_entries_expire_after_their_ttl_without_any_notice(postgresql_dsn: str) -> None:
    async def scenario() -> None:
        await migrated(postgresql_dsn)
        store = await started_store(postgresql_dsn, cache_ttl=0.3, negative_cache_ttl=0.3)
        try:
            assert await store.lookup("late") is None
            assert store.cache.get("late") is not None
            # Written with the trigger off: only the TTL can make the store see it.
            await execute(
                postgresql_dsn,
                "BEGIN; ALTER TABLE seikyou.accounts DISABLE TRIGGER account_changed; "
                "INSERT INTO seikyou.accounts (name, password) VALUES ('late', '{PLAIN}x'); "
                "ALTER TABLE seikyou.accounts ENABLE TRIGGER account_changed; COMMIT",
            )
            assert await store.lookup("late") is None
            await asyncio.sleep(0.35)
            assert await store.lookup("late") is not None
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_database_restart_flushes_and_the_listener_comes_back() -> None:
    with postgresql_server() as server:
        dsn = server.create_database()
        asyncio.run(_restart_scenario(server, dsn))


async def _restart_scenario(server: PostgresqlServer, dsn: str) -> None:
    await migrated(dsn)
    await execute(dsn, "INSERT INTO seikyou.accounts (name, password) VALUES ('a', '{PLAIN}1')")
    store: PostgresqlStore = await started_store(dsn, query_timeout=2.0)
    try:
        assert await store.lookup("a") is not None
        assert len(store.cache) == 1
        await asyncio.to_thread(server.stop)
        assert await until(lambda: not store.listening, 5.0)
        assert len(store.cache) == 0
        try:
            await store.lookup("a")
            raise AssertionError("a lookup with the database down must fail temporarily")
        except StoreUnavailable:
            pass
        await asyncio.to_thread(server.start)
        assert await store.wait_listening(10.0)
        account = await store.lookup("a")
        assert account is not None and account.password == "{PLAIN}1"
    finally:
        await store.close()
