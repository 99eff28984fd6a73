"""The password_query path against a table laid out as a typical Dovecot SQL setup,
loaded with every stored value doveadm made in tests/fixtures/dovecot_hashes.json."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import asyncpg
import pytest
from pgkit import DOMAIN, execute, started_store, until

import seikyou_auth
from seikyou_auth.accounts.postgresql import PostgresqlStore
from seikyou_auth.errors import StoreUnavailable

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "dovecot_hashes.json"
DOVECOT_QUERY = "SELECT password FROM users WHERE userid = '%n' AND domain = '%d'"
USERS_TABLE = """
CREATE TABLE users (
    userid varchar(128) NOT NULL,
    domain varchar(128) NOT NULL,
    password varchar(256),
    home varchar(255) NOT NULL DEFAULT '',
    uid integer NOT NULL DEFAULT 5000,
    gid integer NOT NULL DEFAULT 5000,
    active char(1) NOT NULL DEFAULT 'Y',
    PRIMARY KEY (userid, domain)
)
"""


def entries() -> list[dict[str, str]]:
    loaded: list[dict[str, str]] = json.loads(FIXTURE.read_text())["entries"]
    return loaded


async def load_users(dsn: str, rows: list[tuple[str, str, str | None]]) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(USERS_TABLE)
        await connection.executemany(
            "INSERT INTO users (userid, domain, password) VALUES ($1, $2, $3)", rows
        )
    finally:
        await connection.close()


def test_every_fixture_hash_verifies_through_the_dovecot_query(
    postgresql_dsn: str, active_backend: ModuleType
) -> None:
    hashes = entries()
    assert len(hashes) >= 60  # the whole doveadm set, every scheme and encoding
    rows: list[tuple[str, str, str | None]] = [
        (f"user{index}", DOMAIN, entry["stored"]) for index, entry in enumerate(hashes)
    ]

    async def scenario() -> None:
        await load_users(postgresql_dsn, rows)
        store = await started_store(postgresql_dsn, password_query=DOVECOT_QUERY)
        try:
            for index, entry in enumerate(hashes):
                typed = f"USER{index}@{DOMAIN}" if index % 2 else f"user{index}"
                account = await store.lookup(typed)
                assert account is not None, entry["command"]
                assert account.name == f"user{index}"
                password = entry["password"].encode()
                assert seikyou_auth.verify_password(account.password, password), entry["command"]
                assert not seikyou_auth.verify_password(account.password, b"!" + password[1:])
        finally:
            await store.close()

    asyncio.run(scenario())


def test_other_domains_unknown_users_and_injection_attempts(postgresql_dsn: str) -> None:
    rows: list[tuple[str, str, str | None]] = [
        ("ma10001a", DOMAIN, "{PLAIN}one"),
        ("ma10001a", "other.example", "{PLAIN}two"),
        ("nullpass", DOMAIN, None),
    ]

    async def scenario() -> None:
        await load_users(postgresql_dsn, rows)
        store = await started_store(postgresql_dsn, password_query=DOVECOT_QUERY)
        try:
            own = await store.lookup("ma10001a")
            other = await store.lookup("ma10001a@other.example")
            assert own is not None and own.password == "{PLAIN}one"
            assert other is not None and other.password == "{PLAIN}two"
            assert other.name == "ma10001a@other.example"
            assert await store.lookup("ma10001a@third.example") is None
            # Bound, not pasted: a quote in a name is just part of a name nobody has.
            assert await store.lookup("x'--@seikyou.ne.jp") is None
            with pytest.raises(StoreUnavailable, match="NULL"):
                await store.lookup("nullpass")
        finally:
            await store.close()

    asyncio.run(scenario())


def test_extra_columns_become_extra_fields_and_two_rows_are_a_fault(postgresql_dsn: str) -> None:
    async def scenario() -> None:
        await load_users(postgresql_dsn, [("ma10001a", DOMAIN, "{PLAIN}one")])
        query = (
            "SELECT password, home, uid, 'maildir:~/Maildir' AS userdb_mail FROM users "
            "WHERE userid = '%n' AND domain = '%d' AND active = 'Y'"
        )
        store = await started_store(postgresql_dsn, password_query=query)
        doubled = await started_store(
            postgresql_dsn,
            password_query="SELECT password FROM users, (VALUES (1), (2)) t WHERE userid = %n",
        )
        try:
            account = await store.lookup("ma10001a")
            assert account is not None and account.uid == "5000"
            assert account.extra == {"userdb_mail": "maildir:~/Maildir"}
            with pytest.raises(StoreUnavailable, match="2 rows"):
                await doubled.lookup("ma10001a")
        finally:
            await store.close()
            await doubled.close()

    asyncio.run(scenario())


def test_a_query_postgresql_rejects_is_a_temporary_failure(postgresql_dsn: str) -> None:
    async def scenario() -> None:
        store = await started_store(
            postgresql_dsn, password_query="SELECT password FROM no_such_table WHERE u = %u"
        )
        try:
            with pytest.raises(StoreUnavailable):
                await store.lookup("ma10001a")
        finally:
            await store.close()

    asyncio.run(scenario())


# The trigger docs/accounts-postgresql.md gives for a Dovecot-style table.
USERS_TRIGGER = """
CREATE FUNCTION users_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('seikyou_accounts', OLD.userid || '@' || OLD.domain);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('seikyou_accounts', NEW.userid || '@' || NEW.domain);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_changed AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_changed();
"""


def test_own_table_changes_reach_the_cache_by_cli_notify_or_trigger(
    tmp_path: Path, postgresql_dsn: str
) -> None:
    config = tmp_path / "seikyou.toml"
    config.write_text(
        f'domain = "{DOMAIN}"\ndata_dir = "{tmp_path / "data"}"\n[accounts]\n'
        f'store = "postgresql"\ndsn = "{postgresql_dsn}"\n'
        f'password_query = "{DOVECOT_QUERY}"\n'
    )

    def cli_notify(name: str) -> None:
        command = [sys.executable, "-m", "seikyou_auth", "accounts", "notify", name]
        subprocess.run([*command, "--config", str(config)], check=True, capture_output=True)

    async def password_of(store: PostgresqlStore, name: str) -> str | None:
        account = await store.lookup(name)
        return None if account is None else account.password

    async def scenario() -> None:
        await load_users(postgresql_dsn, [("ma10001a", DOMAIN, "{PLAIN}one")])
        store = await started_store(postgresql_dsn, password_query=DOVECOT_QUERY)
        try:
            assert await password_of(store, "ma10001a") == "{PLAIN}one"
            await execute(postgresql_dsn, "UPDATE users SET password = '{PLAIN}two'")
            assert await password_of(store, "ma10001a") == "{PLAIN}one"  # cached, no notice
            await asyncio.to_thread(cli_notify, "ma10001a")
            assert await until(lambda: store.cache.get("ma10001a") is None, 1.0)
            assert await password_of(store, "ma10001a") == "{PLAIN}two"

            await execute(postgresql_dsn, USERS_TRIGGER)
            await execute(postgresql_dsn, "UPDATE users SET password = '{PLAIN}three'")
            assert await until(lambda: store.cache.get("ma10001a") is None, 1.0)
            assert await password_of(store, "ma10001a") == "{PLAIN}three"
        finally:
            await store.close()

    asyncio.run(scenario())


def test_every_edge_case_value_comes_back_intact_or_as_a_bad_value(postgresql_dsn: str) -> None:
    edge = json.loads((FIXTURE.parent / "dovecot_edge_cases.json").read_text())["entries"]
    rows: list[tuple[str, str, str | None]] = [
        (f"edge{index}", DOMAIN, entry["stored"]) for index, entry in enumerate(edge)
    ]

    async def scenario() -> None:
        await load_users(postgresql_dsn, rows)
        store = await started_store(postgresql_dsn, password_query=DOVECOT_QUERY)
        bad_values = 0
        try:
            for index, entry in enumerate(edge):
                try:
                    account = await store.lookup(f"edge{index}")
                except StoreUnavailable:
                    # Only a scheme Dovecot does not know either is a bad stored value.
                    assert "Unknown scheme" in entry["dovecot_says"], entry["command"]
                    bad_values += 1
                    continue
                assert account is not None and account.password == entry["stored"]
        finally:
            await store.close()
        unknown = sum("Unknown scheme" in entry["dovecot_says"] for entry in edge)
        assert bad_values == unknown > 0

    asyncio.run(scenario())
