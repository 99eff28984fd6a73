"""An ``AccountStore`` on PostgreSQL (asyncpg, a connection pool), for many nodes sharing one
account database that other systems (billing, signup) write too.

Passwords are found in the project's schema (``seikyou.accounts``, see ``sql_schema``) or,
with ``password_query``, in the ISP's own table through a Dovecot-style query whose variables
are bound parameters (``password_query``). Either way the stored value is a Dovecot
``{SCHEME}`` string, checked as the passwd-file checks it.

Faults are temporary failures, never "no such user": a database that cannot be reached or
does not answer within ``query_timeout``, a query PostgreSQL rejects, or a stored value that
is not a usable ``{SCHEME}`` string (for that one account) raise ``StoreUnavailable``, so the
servers answer 454 / 451 / ``-ERR [SYS/TEMP]``. Each trouble is logged once a minute at most,
never with the DSN; lookups work again as soon as the database does.

Lookups are cached (``LookupCache``) only while a dedicated connection listens on the
``seikyou_accounts`` channel: every change announced there drops its entry on every node at
once. When that connection is lost the cache is emptied and bypassed; the listener reconnects
by itself and empties it again once listening, since it may have missed announcements.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import asyncpg

from seikyou_auth.accounts.cache import LookupCache
from seikyou_auth.accounts.model import Account
from seikyou_auth.accounts.passwd_file import canonical_name, usable_name
from seikyou_auth.accounts.password_query import PasswordQuery, parse_password_query
from seikyou_auth.accounts.sql_schema import ACCOUNTS_TABLE, CHANNEL, FLUSH_ALL
from seikyou_auth.errors import StoreUnavailable, UnsupportedScheme
from seikyou_auth.logtext import quoted
from seikyou_auth.schemes import stored_scheme

__all__ = ["DATABASE_ERRORS", "PostgresqlStore"]

logger = logging.getLogger(__name__)

# Everything a lookup can meet from the database side: refused or lost connections,
# timeouts, errors PostgreSQL reports (a bad query, a missing table, "starting up"), and
# the driver's own confusion on a connection dying mid-query (InternalClientError, seen
# while PostgreSQL shuts down under load), and a DSN it cannot parse (ValueError: a bad port).
DATABASE_ERRORS = (
    ValueError,
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
_CONNECTION_LOST = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    ConnectionError,
)
_OWN_SCHEMA_QUERY = (
    f"SELECT password, uid, gid, gecos, home, shell, extra::text AS extra "  # noqa: S608
    f"FROM {ACCOUNTS_TABLE} WHERE name = $1"
)
_FIXED_COLUMNS = ("uid", "gid", "gecos", "home", "shell")
_LOG_REPEAT_SECONDS = 60.0
_LISTEN_HEARTBEAT_SECONDS = 5.0
_RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0)
_LISTENER_LOST = "PostgreSQL change listener lost; account cache bypassed until it is back"


class _TroubleLog:
    """Each distinct trouble logged at once, then at most once a minute. ``recovered`` ends
    an outage (logged once); troubles of single accounts never do, the database answered."""

    _MAX_REMEMBERED = 1000  # distinct troubles; beyond that they are forgotten and logged anew

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def note(self, trouble: str) -> None:
        now = time.monotonic()
        if now - self._last.get(trouble, -_LOG_REPEAT_SECONDS) >= _LOG_REPEAT_SECONDS:
            if len(self._last) >= self._MAX_REMEMBERED:
                self._last.clear()
            self._last[trouble] = now
            logger.error("%s; logins are answered 'try again later'", trouble)

    def recovered(self) -> None:
        if self._last:
            self._last.clear()
            logger.warning("PostgreSQL account store answers again")


def _describe(error: BaseException, timeout: float) -> str:
    if isinstance(error, TimeoutError):
        return f"PostgreSQL account store did not answer within {timeout:g} s"
    if isinstance(error, asyncpg.UndefinedTableError):
        return f"PostgreSQL account store: {error} (run 'seikyou-auth accounts migrate')"
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"PostgreSQL account store unreachable or failing: {reason}"


def _extra_from_json(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    decoded = json.loads(text)
    if not isinstance(decoded, dict):
        return {}
    return {
        str(key): value if isinstance(value, str) else json.dumps(value)
        for key, value in decoded.items()
    }


class PostgresqlStore:
    """An ``AccountStore`` over PostgreSQL. ``start()`` opens the pool and the listener (the
    first lookup does it otherwise); ``close()`` ends both. One per process: a pool does not
    survive ``fork``."""

    def __init__(
        self,
        dsn: str,
        *,
        domain: str | None = None,
        pool_size: int = 10,
        password_query: str = "",
        cache_ttl: float = 300.0,
        negative_cache_ttl: float = 60.0,
        query_timeout: float = 5.0,
    ) -> None:
        self._dsn = dsn or None  # None: libpq's environment (PGHOST, PGPASSWORD, ~/.pgpass)
        self.domain = domain.lower() if domain else None
        self.pool_size = pool_size
        self.query: PasswordQuery | None = (
            parse_password_query(password_query) if password_query else None
        )
        self.query_timeout = query_timeout
        self.cache = LookupCache(cache_ttl, negative_cache_ttl)
        self.listening = False
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening_changed = asyncio.Event()
        self._starting = asyncio.Lock()
        self._outage = _TroubleLog()
        self._bad_accounts = _TroubleLog()

    def __repr__(self) -> str:
        source = "password_query" if self.query is not None else ACCOUNTS_TABLE
        return f"PostgresqlStore({source}, domain={self.domain!r})"

    async def start(self) -> None:
        """Create the pool (no connection yet: a database that is down now is only a
        temporary failure) and start listening for changes when the cache is on."""
        async with self._starting:  # the first lookups may all find no pool at once
            if self._pool is not None:
                return
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=0,
                max_size=self.pool_size,
                timeout=self.query_timeout,
                command_timeout=self.query_timeout,
                server_settings={"application_name": "seikyou-auth"},
            )
            if self.cache.enabled:
                self._listener = asyncio.create_task(self._listen_forever())

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), self.query_timeout)
            except TimeoutError:
                pool.terminate()

    async def wait_listening(self, timeout: float) -> bool:
        """Whether the change listener is up within ``timeout`` seconds (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while not self.listening:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._listening_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._listening_changed.wait(), remaining)
        return True

    async def lookup(self, username: str) -> Account | None:
        name = canonical_name(username, self.domain)
        if not usable_name(name):
            return None  # no query for a name that can never be an account
        use_cache = self.listening
        if use_cache:
            cached = self.cache.get(name)
            if cached is not None:
                return cached.account
        generation = self.cache.generation
        account = await self._query(name)
        if use_cache and self.listening:
            self.cache.put(name, account, generation)
        return account

    async def _query(self, name: str) -> Account | None:
        if self._pool is None:
            await self.start()
        assert self._pool is not None
        if self.query is not None:
            sql, arguments = self.query.sql, self.query.arguments(name, self.domain)
        else:
            sql, arguments = _OWN_SCHEMA_QUERY, [name]
        try:
            async with asyncio.timeout(self.query_timeout):
                try:
                    rows = await self._pool.fetch(sql, *arguments)
                except _CONNECTION_LOST:
                    # A pooled connection from before a database restart: one fresh try.
                    rows = await self._pool.fetch(sql, *arguments)
        except DATABASE_ERRORS as error:
            trouble = _describe(error, self.query_timeout)
            self._outage.note(trouble)
            raise StoreUnavailable(trouble) from None
        self._outage.recovered()
        return self._account(name, rows)

    def _account(self, name: str, rows: list[asyncpg.Record]) -> Account | None:
        if not rows:
            return None
        if len(rows) > 1:
            raise self._bad_account(name, f"the query returned {len(rows)} rows")
        row: Mapping[str, Any] = dict(rows[0].items())
        password = row.get("password")
        if not isinstance(password, str):
            raise self._bad_account(name, "no 'password' column, or it is NULL")
        try:
            stored_scheme(password)
        except UnsupportedScheme:
            raise self._bad_account(name, "the stored password has an unsupported scheme") from None
        fixed = {column: str(row.get(column) or "") for column in _FIXED_COLUMNS}
        if self.query is None:
            extra = _extra_from_json(row.get("extra"))
        else:
            # As Dovecot: every other column the query returns is an extra field.
            extra = {
                str(key): str(value)
                for key, value in row.items()
                if key != "password" and key not in _FIXED_COLUMNS and value is not None
            }
        return Account(name, password, extra=extra, **fixed)

    def _bad_account(self, name: str, why: str) -> StoreUnavailable:
        trouble = f"PostgreSQL account store: account {quoted(name)}: {why}"
        self._bad_accounts.note(trouble)
        return StoreUnavailable(trouble)

    def _on_notify(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        if payload == FLUSH_ALL or not isinstance(payload, str):
            self.cache.flush()
        else:
            self.cache.invalidate(canonical_name(payload, self.domain))

    def _set_listening(self, listening: bool) -> None:
        # Emptied on both edges: entries cached before listening began, or while a change
        # could not reach us, may be stale.
        self.cache.flush()
        self.listening = listening
        self._listening_changed.set()

    async def _listen_forever(self) -> None:
        attempt = 0
        while True:
            try:
                connection = await asyncpg.connect(self._dsn, timeout=self.query_timeout)
            except DATABASE_ERRORS:
                await asyncio.sleep(_RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)])
                attempt += 1
                continue
            attempt = 0
            try:
                await self._listen(connection)  # returns when the connection is lost
                logger.warning(_LISTENER_LOST)
            except DATABASE_ERRORS:
                logger.warning(_LISTENER_LOST)
            except Exception:  # the listener must outlive anything; logins do not need it
                logger.exception("PostgreSQL change listener failed; reconnecting")
                await asyncio.sleep(_RECONNECT_DELAYS[-1])
            finally:
                self._set_listening(False)
                connection.terminate()

    async def _listen(self, connection: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(CHANNEL, self._on_notify)
        self._set_listening(True)
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), _LISTEN_HEARTBEAT_SECONDS)
            if not lost.is_set():
                # A peer that vanished without closing (a network cut) is found here.
                await connection.execute("SELECT 1", timeout=self.query_timeout)
