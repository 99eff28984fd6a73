"""Changes to the ``seikyou.accounts`` table, as the CLI makes them (one connection each).

Every change is one statement or one transaction; the table's trigger announces it to every
node's cache. ``import_accounts`` is an upsert of a whole passwd-file in one transaction:
rows already equal are left alone (no write, no announcement), so running it twice changes
nothing the second time; accounts missing from the file are kept.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

from seikyou_auth.accounts.editing import UnknownUser, UserExists
from seikyou_auth.accounts.model import Account
from seikyou_auth.accounts.postgresql import DATABASE_ERRORS
from seikyou_auth.accounts.sql_schema import CHANNEL, FLUSH_ALL
from seikyou_auth.errors import StoreUnavailable

__all__ = [
    "IMPORT_BATCH",
    "TABLE_LABEL",
    "ImportCount",
    "add_account",
    "delete_account",
    "get_password",
    "import_accounts",
    "list_accounts",
    "notify",
    "run",
    "set_password",
]

T = TypeVar("T")
TABLE_LABEL = "PostgreSQL table seikyou.accounts"
IMPORT_BATCH = 10_000
_COLUMNS = ("name", "password", "uid", "gid", "gecos", "home", "shell", "extra")


def _reason(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return text or type(error).__name__


def run(dsn: str, timeout: float, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """``work`` on one new connection; database trouble becomes a one-line StoreUnavailable."""

    async def connected() -> T:
        try:
            connection = await asyncpg.connect(
                dsn or None, timeout=timeout, server_settings={"application_name": "seikyou-auth"}
            )
        except DATABASE_ERRORS as error:
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {_reason(error)}") from None
        try:
            return await work(connection)
        except asyncpg.UndefinedTableError as error:
            raise StoreUnavailable(
                f"PostgreSQL: {_reason(error)}: run 'seikyou-auth accounts migrate' first"
            ) from None
        except DATABASE_ERRORS as error:
            raise StoreUnavailable(f"PostgreSQL: {_reason(error)}") from None
        finally:
            connection.terminate()  # nothing is left to flush: each change has committed

    return asyncio.run(connected())


async def _change_one(
    connection: asyncpg.Connection, unchanged: Exception, sql: str, *args: str
) -> None:
    """Run ``sql`` (which returns the name of the row it changed); ``unchanged`` if none."""
    if await connection.fetchval(sql, *args) is None:
        raise unchanged


async def add_account(connection: asyncpg.Connection, name: str, stored: str) -> None:
    await _change_one(
        connection,
        UserExists(f"user {name} already exists in {TABLE_LABEL}"),
        "INSERT INTO seikyou.accounts (name, password) VALUES ($1, $2) "
        "ON CONFLICT (name) DO NOTHING RETURNING name",
        name,
        stored,
    )


async def get_password(connection: asyncpg.Connection, name: str) -> str | None:
    password = await connection.fetchval(
        "SELECT password FROM seikyou.accounts WHERE name = $1", name
    )
    return None if password is None else str(password)


async def set_password(connection: asyncpg.Connection, name: str, stored: str) -> None:
    await _change_one(
        connection,
        UnknownUser(f"no user {name} in {TABLE_LABEL}"),
        "UPDATE seikyou.accounts SET password = $2, updated_at = now() WHERE name = $1 "
        "RETURNING name",
        name,
        stored,
    )


async def delete_account(connection: asyncpg.Connection, name: str) -> None:
    await _change_one(
        connection,
        UnknownUser(f"no user {name} in {TABLE_LABEL}"),
        "DELETE FROM seikyou.accounts WHERE name = $1 RETURNING name",
        name,
    )


async def list_accounts(connection: asyncpg.Connection) -> list[tuple[str, str]]:
    """(name, stored password) of every account, by name."""
    rows = await connection.fetch("SELECT name, password FROM seikyou.accounts ORDER BY name")
    return [(str(row["name"]), str(row["password"])) for row in rows]


async def notify(connection: asyncpg.Connection, name: str | None) -> None:
    """Tell every node's cache that ``name`` (None: every account) changed."""
    await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, name or FLUSH_ALL)


@dataclass(frozen=True)
class ImportCount:
    added: int
    updated: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged


_UPSERT = """
WITH upserted AS (
    INSERT INTO seikyou.accounts AS account
        (name, password, uid, gid, gecos, home, shell, extra)
    SELECT name, password, uid, gid, gecos, home, shell, extra FROM incoming
    ON CONFLICT (name) DO UPDATE SET
        password = excluded.password, uid = excluded.uid, gid = excluded.gid,
        gecos = excluded.gecos, home = excluded.home, shell = excluded.shell,
        extra = excluded.extra, updated_at = now()
    WHERE (account.password, account.uid, account.gid, account.gecos, account.home,
           account.shell, account.extra)
        IS DISTINCT FROM (excluded.password, excluded.uid, excluded.gid, excluded.gecos,
                          excluded.home, excluded.shell, excluded.extra)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS added,
       count(*) FILTER (WHERE NOT inserted) AS updated
FROM upserted
"""


def _record(account: Account) -> tuple[str, ...]:
    extra = json.dumps(dict(account.extra), sort_keys=True)
    fixed = (account.uid, account.gid, account.gecos, account.home, account.shell)
    return (account.name, account.password, *fixed, extra)


async def import_accounts(
    connection: asyncpg.Connection,
    accounts: Sequence[Account],
    progress: Callable[[int, int], None],
) -> ImportCount:
    """Upsert ``accounts`` in one transaction; ``progress(sent, total)`` after each batch."""
    async with connection.transaction():
        await connection.execute(
            "CREATE TEMPORARY TABLE incoming (LIKE seikyou.accounts INCLUDING DEFAULTS) "
            "ON COMMIT DROP"
        )
        for start in range(0, len(accounts), IMPORT_BATCH):
            batch = accounts[start : start + IMPORT_BATCH]
            await connection.copy_records_to_table(
                "incoming", records=[_record(account) for account in batch], columns=_COLUMNS
            )
            progress(start + len(batch), len(accounts))
        counts = await connection.fetchrow(_UPSERT)
    assert counts is not None  # an aggregate always returns its one row
    added, updated = int(counts["added"]), int(counts["updated"])
    return ImportCount(added, updated, len(accounts) - added - updated)
