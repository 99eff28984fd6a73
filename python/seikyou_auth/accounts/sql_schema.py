"""The project's own PostgreSQL schema, ``seikyou``, and the migrations that build it.

``seikyou.schema_version`` holds one row per migration applied. ``migrate`` runs the missing
ones in one transaction under an advisory lock, so running it again (or on two nodes at once)
changes nothing. Migrations are only ever appended: a released one is never edited.

``seikyou.accounts`` holds one row per account, its name canonical (lower case, no own
``@domain``) and its password a Dovecot ``{SCHEME}`` value. A trigger sends
``NOTIFY seikyou_accounts, '<name>'`` for every row inserted, changed or deleted, whoever
writes it (the CLI, a billing system), and ``''`` (everything) on TRUNCATE: every node's
cache drops the entry when the transaction commits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

__all__ = [
    "ACCOUNTS_TABLE",
    "CHANNEL",
    "FLUSH_ALL",
    "MIGRATIONS",
    "SchemaTooNew",
    "migrate",
    "schema_version",
]

CHANNEL = "seikyou_accounts"
FLUSH_ALL = ""  # the NOTIFY payload meaning "forget every cached account"
ACCOUNTS_TABLE = "seikyou.accounts"
_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('seikyou.migrate'))"

_VERSION_TABLE = """
CREATE SCHEMA IF NOT EXISTS seikyou;
CREATE TABLE IF NOT EXISTS seikyou.schema_version (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""

MIGRATIONS: tuple[str, ...] = (
    # 1: accounts, and the trigger that tells every node of a change.
    f"""
CREATE TABLE seikyou.accounts (
    name text PRIMARY KEY CHECK (name <> '' AND name = lower(name)),
    password text NOT NULL,
    uid text NOT NULL DEFAULT '',
    gid text NOT NULL DEFAULT '',
    gecos text NOT NULL DEFAULT '',
    home text NOT NULL DEFAULT '',
    shell text NOT NULL DEFAULT '',
    extra jsonb NOT NULL DEFAULT '{{}}' CHECK (jsonb_typeof(extra) = 'object'),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION seikyou.account_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('{CHANNEL}', OLD.name);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.name <> OLD.name) THEN
        PERFORM pg_notify('{CHANNEL}', NEW.name);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER account_changed AFTER INSERT OR UPDATE OR DELETE ON seikyou.accounts
    FOR EACH ROW EXECUTE FUNCTION seikyou.account_changed();

CREATE FUNCTION seikyou.accounts_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '{FLUSH_ALL}');
    RETURN NULL;
END
$$;

CREATE TRIGGER accounts_truncated AFTER TRUNCATE ON seikyou.accounts
    FOR EACH STATEMENT EXECUTE FUNCTION seikyou.accounts_truncated();
""",
)


class SchemaTooNew(Exception):
    """The database was migrated by a newer seikyou-auth; the message says which versions."""


async def schema_version(connection: asyncpg.Connection) -> int:
    """The version of the schema in the database; 0 before the first migration."""
    exists = await connection.fetchval("SELECT to_regclass('seikyou.schema_version') IS NOT NULL")
    if not exists:
        return 0
    version = await connection.fetchval(
        "SELECT coalesce(max(version), 0) FROM seikyou.schema_version"
    )
    return int(version)


async def migrate(connection: asyncpg.Connection) -> tuple[int, int]:
    """Apply the missing migrations in one transaction; (version before, version after)."""
    async with connection.transaction():
        await connection.execute(_MIGRATION_LOCK)
        await connection.execute(_VERSION_TABLE)
        before = await schema_version(connection)
        if before > len(MIGRATIONS):
            raise SchemaTooNew(
                f"the database schema is version {before}; this seikyou-auth knows up to "
                f"{len(MIGRATIONS)}: upgrade seikyou-auth"
            )
        for version in range(before + 1, len(MIGRATIONS) + 1):
            await connection.execute(MIGRATIONS[version - 1])
            await connection.execute(
                "INSERT INTO seikyou.schema_version (version) VALUES ($1)", version
            )
    return before, len(MIGRATIONS)
