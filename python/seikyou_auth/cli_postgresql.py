"""The ``user`` and ``accounts`` commands on a config with ``[accounts] store = "postgresql"``.

The ``user`` commands print what they print on a passwd-file, naming the table instead of
the file. With ``password_query`` the accounts live in the ISP's own table, which these
commands cannot know the layout of: ``user`` commands refuse, and after changing that table
``accounts notify NAME`` drops the name from every node's cache.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from seikyou_auth.accounts import postgresql_admin as admin
from seikyou_auth.accounts.editing import UnknownUser, validate_new_name
from seikyou_auth.accounts.passwd_file import canonical_name, parse_lines
from seikyou_auth.accounts.sql_schema import migrate

if TYPE_CHECKING:
    import asyncpg

    from seikyou_auth.server.config import Config

__all__ = ["accounts_import", "accounts_migrate", "accounts_notify", "user_command"]

PROG = "seikyou-auth"
T = TypeVar("T")
NewStored = Callable[[argparse.Namespace, str], str]  # (args, default scheme) -> {SCHEME}...
WarnStored = Callable[["Config", str], None]  # says which enabled mechanisms it cannot serve


def _usage_error(message: str) -> Exception:
    from seikyou_auth.cli import EXIT_USAGE, CliError

    return CliError(message, EXIT_USAGE)


def _own_table(config: Config) -> None:
    if config.accounts.password_query:
        raise _usage_error(
            "this config reads passwords with password_query from your own table: change "
            f"that table, then run '{PROG} accounts notify NAME' so every node sees it"
        )


def _run(config: Config, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    return admin.run(config.accounts.dsn, config.accounts.query_timeout, work)


def user_command(
    config: Config, args: argparse.Namespace, new_stored: NewStored, warn_stored: WarnStored
) -> int:
    """``user add|del|list|passwd`` against ``seikyou.accounts``."""
    _own_table(config)
    where = admin.TABLE_LABEL
    if args.action == "list":
        from seikyou_auth.schemes import scheme_of

        for name, password in _run(config, admin.list_accounts):
            print(f"{name}\t{scheme_of(password)}")
        return 0
    if args.action == "add":
        name = validate_new_name(args.name, config.domain)
        stored = new_stored(args, config.default_scheme)
        _run(config, lambda connection: admin.add_account(connection, name, stored))
        print(f"added {name} to {where}")
        warn_stored(config, stored)
        return 0
    name = canonical_name(args.name, config.domain)
    if args.action == "del":
        _run(config, lambda connection: admin.delete_account(connection, name))
        print(f"deleted {name} from {where}")
        return 0
    current = _run(config, lambda connection: admin.get_password(connection, name))
    if current is None:
        raise UnknownUser(f"no user {name} in {where}")
    stored = new_stored(args, _kept_scheme(current))
    _run(config, lambda connection: admin.set_password(connection, name, stored))
    print(f"changed the password of {name}")
    return 0


def _kept_scheme(current: str) -> str:
    """The scheme (with its encoding) of the current value, so the mechanisms that worked
    still do; SHA512-CRYPT when it is not one we can make."""
    from seikyou_auth import SCHEMES
    from seikyou_auth.schemes import scheme_of, stored_scheme

    return stored_scheme(current).label if scheme_of(current) in SCHEMES else "SHA512-CRYPT"


def accounts_migrate(config: Config) -> int:
    before, after = _run(config, migrate)
    if before == after:
        print(f"schema seikyou is up to date (version {after})")
    else:
        print(f"schema seikyou migrated from version {before} to {after}")
    return 0


def accounts_import(config: Config, path: Path) -> int:
    _own_table(config)
    with open(path, "rb") as handle:
        parsed = parse_lines(handle, config.domain)
    if parsed.bad_lines:
        for number, why in parsed.bad_lines:
            print(f"{PROG}: {path}:{number}: {why}", file=sys.stderr)
        from seikyou_auth.cli import CliError

        raise CliError(f"nothing imported: fix the {len(parsed.bad_lines)} bad line(s) first")
    accounts = list(parsed.accounts.values())

    def progress(sent: int, total: int) -> None:
        if total > admin.IMPORT_BATCH:
            print(f"{PROG}: {sent}/{total} accounts sent", file=sys.stderr, flush=True)

    count = _run(config, lambda c: admin.import_accounts(c, accounts, progress))
    print(
        f"imported {count.total} accounts from {path}: {count.added} added, "
        f"{count.updated} updated, {count.unchanged} unchanged"
    )
    return 0


def accounts_notify(config: Config, name: str | None) -> int:
    canonical = canonical_name(name, config.domain) if name else None
    _run(config, lambda connection: admin.notify(connection, canonical))
    print(f"told every node that {canonical or 'every account'} changed")
    return 0
