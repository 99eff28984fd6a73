"""The account store a server config names (``[accounts] store``), and its lifecycle.

A store with a connection pool (PostgreSQL) must be made in the process that uses it (after
``fork``, one per worker), started on its event loop and closed at shutdown; the passwd-file
needs none of that. ``start_store``/``close_store`` do what the store needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from seikyou_auth.accounts.model import AccountStore
from seikyou_auth.accounts.passwd_file import PasswdFileStore

if TYPE_CHECKING:
    from seikyou_auth.server.config import Config

__all__ = [
    "MISSING_EXTRA",
    "ManagedStore",
    "close_store",
    "dsn_problem",
    "open_store",
    "start_store",
]

_DSN_SCHEMES = ("postgresql://", "postgres://")
MISSING_EXTRA = (
    "[accounts] store = \"postgresql\" needs the 'postgresql' extra:"
    " pip install 'seikyou-auth[postgresql]'"
)


@runtime_checkable
class ManagedStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...


def dsn_problem(dsn: str) -> str | None:
    """Why asyncpg cannot use ``dsn``, or None; never quoting it (it may hold a password)."""
    if not dsn.startswith(_DSN_SCHEMES):
        return (
            "must be a URL starting with postgresql:// (libpq's key=value strings are not "
            "supported), or empty for libpq's environment"
        )
    return None


def open_store(config: Config) -> AccountStore:
    """The configured store, not started yet."""
    accounts = config.accounts
    if accounts.store != "postgresql":
        return PasswdFileStore(config.passwd_file, config.domain)
    from seikyou_auth.accounts.postgresql import PostgresqlStore

    return PostgresqlStore(
        accounts.dsn,
        domain=config.domain,
        pool_size=accounts.pool_size,
        password_query=accounts.password_query,
        cache_ttl=accounts.cache_ttl,
        negative_cache_ttl=accounts.negative_cache_ttl,
        query_timeout=accounts.query_timeout,
    )


async def start_store(store: AccountStore | None) -> None:
    if isinstance(store, ManagedStore):
        await store.start()


async def close_store(store: AccountStore | None) -> None:
    if isinstance(store, ManagedStore):
        await store.close()
