"""PostgresqlStore on the project's schema: migrations, lookups, bad values, name rules."""

from __future__ import annotations

import asyncio
import logging
from types import ModuleType

import asyncpg
import pytest
from pgkit import DOMAIN, closed_port, execute, migrated, started_store

import seikyou_auth
from seikyou_auth.accounts.postgresql import PostgresqlStore
from seikyou_auth.errors import StoreUnavailable


def test_migrate_creates_the_schema_once(postgresql_dsn: str) -> None:
    async def scenario() -> None:
        assert await migrated(postgresql_dsn) == (0, 1)
        assert await migrated(postgresql_dsn) == (1, 1)
        connection = await asyncpg.connect(postgresql_dsn)
        try:
            versions = await connection.fetch("SELECT version FROM seikyou.schema_version")
        finally:
            await connection.close()
        assert [row["version"] for row in versions] == [1]

    asyncio.run(scenario())


def test_concurrent_migrations_both_succeed(postgresql_dsn: str) -> None:
    async def scenario() -> list[tuple[int, int]]:
        return list(await asyncio.gather(migrated(postgresql_dsn), migrated(postgresql_dsn)))

    assert sorted(asyncio.run(scenario())) == [(0, 1), (1, 1)]


def test_lookups_follow_the_passwd_file_name_rules(
    postgresql_dsn: str, active_backend: ModuleType
) -> None:
    async def scenario() -> None:
        await migrated(postgresql_dsn)
        stored = seikyou_auth.hash_password(b"s3cret", "SHA512-CRYPT")
        await execute(
            postgresql_dsn,
            "INSERT INTO seikyou.accounts (name, password, home, extra) VALUES "
            "($1, $2, '/home/ma10001a', '{\"userdb_quota_rule\": \"*:storage=1G\"}'), "
            "('guest@other.example', '{PLAIN}x', '', '{}')",
            "ma10001a",
            stored,
        )
        store = await started_store(postgresql_dsn, cache_ttl=0, negative_cache_ttl=0)
        try:
            for typed in ("ma10001a", "MA10001A", f"ma10001a@{DOMAIN.upper()}"):
                account = await store.lookup(typed)
                assert account is not None and account.name == "ma10001a"
                assert seikyou_auth.verify_password(account.password, b"s3cret")
                assert not seikyou_auth.verify_password(account.password, b"wrong")
                assert account.home == "/home/ma10001a"
                assert account.extra == {"userdb_quota_rule": "*:storage=1G"}
            guest = await store.lookup("Guest@Other.Example")
            assert guest is not None and guest.name == "guest@other.example"
            assert await store.lookup("ma10001a@other.example") is None
            assert await store.lookup("nobody") is None
            for unusable in ("", "../etc", ".hidden", "a b", "x' OR '1'='1"):
                assert await store.lookup(unusable) is None
            assert "s3cret" not in repr(store) and "password" not in repr(account)
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_bad_stored_value_is_a_temporary_failure_for_that_account_only(
    postgresql_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        await migrated(postgresql_dsn)
        await execute(
            postgresql_dsn,
            "INSERT INTO seikyou.accounts (name, password) VALUES "
            "('broken', '{NO-SUCH-SCHEME}abc'), ('fine', '{PLAIN}ok')",
        )
        store = await started_store(postgresql_dsn)
        try:
            for _ in range(3):
                with pytest.raises(StoreUnavailable, match="unsupported scheme"):
                    await store.lookup("broken")
                assert await store.lookup("fine") is not None
        finally:
            await store.close()

    with caplog.at_level(logging.WARNING, logger="seikyou_auth.accounts.postgresql"):
        asyncio.run(scenario())
    messages = [record.getMessage() for record in caplog.records]
    # Logged once (a minute), not once per login; the database itself never failed.
    assert sum('account "broken"' in message for message in messages) == 1
    assert not any("answers again" in message for message in messages)
    assert not any("abc" in message for message in messages)


def test_an_unmigrated_database_says_to_migrate(postgresql_dsn: str) -> None:
    async def scenario() -> None:
        store = await started_store(postgresql_dsn, cache_ttl=0, negative_cache_ttl=0)
        try:
            with pytest.raises(StoreUnavailable, match="accounts migrate"):
                await store.lookup("ma10001a")
        finally:
            await store.close()

    asyncio.run(scenario())


def test_an_unreachable_database_is_a_temporary_failure_naming_no_secret() -> None:
    async def scenario() -> None:
        for dsn in (
            f"postgresql://seikyou:hunter2@127.0.0.1:{closed_port()}/nowhere",
            "postgresql://seikyou:hunter2@127.0.0.1:notaport/nowhere",
        ):
            store = PostgresqlStore(dsn, domain=DOMAIN, query_timeout=2.0)
            try:
                with pytest.raises(StoreUnavailable) as raised:
                    await store.lookup("ma10001a")
                assert "hunter2" not in str(raised.value)
                assert "hunter2" not in repr(store)
            finally:
                await store.close()

    asyncio.run(scenario())


def test_a_slow_database_times_out_as_a_temporary_failure(postgresql_dsn: str) -> None:
    async def scenario() -> None:
        query = (
            "SELECT password FROM (SELECT pg_sleep(3), '{PLAIN}x'::text AS password) s "
            "WHERE %u <> ''"
        )
        store = await started_store(
            postgresql_dsn,
            password_query=query,
            query_timeout=0.5,
            cache_ttl=0,
            negative_cache_ttl=0,
        )
        try:
            with pytest.raises(StoreUnavailable, match=r"did not answer within 0\.5 s"):
                await store.lookup("ma10001a")
        finally:
            await store.close()

    asyncio.run(scenario())


def test_lookups_racing_to_start_the_store_make_one_pool(
    postgresql_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[object] = []
    create_pool = asyncpg.create_pool

    async def counted_create_pool(*args: object, **kwargs: object) -> object:
        await asyncio.sleep(0)  # a real network round trip may yield here too
        made.append(await create_pool(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(asyncpg, "create_pool", counted_create_pool)

    async def scenario() -> None:
        await migrated(postgresql_dsn)
        store = PostgresqlStore(postgresql_dsn, domain=DOMAIN)
        try:
            results = await asyncio.gather(*(store.lookup(f"user{n}") for n in range(20)))
            assert results == [None] * 20
            await store.start()
        finally:
            await store.close()

    asyncio.run(scenario())
    assert len(made) == 1
