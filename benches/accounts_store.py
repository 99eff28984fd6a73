"""SMTP AUTH logins/s on the PostgreSQL account store (cache on, cache off) against the
passwd-file, the three servers running side by side on this machine.

Each server is ``seikyou-auth serve`` with one submission listener; the account is stored
``{PLAIN}`` so hashing costs next to nothing and the store's own cost shows. PostgreSQL is a
real cluster started for the run (tests/support/postgresql.py). The clients and their rounds
are benches/loadgen.py's (connect, EHLO, AUTH PLAIN, QUIT); rounds alternate between the
servers so drifting machine load hits all three alike, and the medians are compared.

    python benches/accounts_store.py [--clients 16] [--seconds 3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import asyncpg
from loadgen import (
    PASSWORD,
    Result,
    _client_loop,
    measure,
    one_session,
    process_tree_cpu,
    seikyou_server,
)

import seikyou_auth
from seikyou_auth.accounts.sql_schema import migrate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.postgresql import postgresql_server

ACCOUNT = "ma10001a"
STORES = {
    "passwd-file": "",
    "postgresql, cache on": '[accounts]\nstore = "postgresql"\ndsn = "{dsn}"\n',
    "postgresql, cache off": (
        '[accounts]\nstore = "postgresql"\ndsn = "{dsn}"\ncache_ttl = 0\nnegative_cache_ttl = 0\n'
    ),
}


async def load_account(dsn: str, stored: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await migrate(connection)
        await connection.execute(
            "INSERT INTO seikyou.accounts (name, password) VALUES ($1, $2)", ACCOUNT, stored
        )
    finally:
        await connection.close()


def run(args: argparse.Namespace) -> dict[str, list[Result]]:
    results: dict[str, list[Result]] = {name: [] for name in STORES}
    stored = seikyou_auth.hash_password(PASSWORD, "PLAIN")
    with tempfile.TemporaryDirectory(prefix="seikyou-accounts-bench-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        database = stack.enter_context(postgresql_server())
        dsn = database.create_database()
        asyncio.run(load_account(dsn, stored))
        servers = {}
        for index, (name, accounts) in enumerate(STORES.items()):
            workdir = root / f"server{index}"
            workdir.mkdir()
            passwd = workdir / "passwd"
            passwd.write_text(f"{ACCOUNT}:{stored}:1000:1000::/home/{ACCOUNT}::\n")
            # A file changed within 2 s is re-read at every lookup (the store's racy-clean
            # rule); dated an hour back, the passwd-file is measured as it runs in production.
            an_hour_ago = time.time() - 3600
            os.utime(passwd, (an_hour_ago, an_hour_ago))
            tables = accounts.format(dsn=dsn)
            servers[name] = stack.enter_context(seikyou_server(workdir, False, 1, tables))
        for port, _ in servers.values():
            _client_loop(one_session(port, "PLAIN"))  # warm up, and prove it works
        for _ in range(args.rounds):
            for name, (port, pid) in servers.items():
                before = process_tree_cpu(pid)
                result = _client_loop(
                    measure(port, "PLAIN", args.clients, args.seconds, args.max_sessions)
                )
                result.server_cpu = process_tree_cpu(pid) - before
                results[name].append(result)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0, help="per round and server")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians")
    parser.add_argument("--max-sessions", type=int, default=50_000)
    args = parser.parse_args()
    results = run(args)
    base_rate = statistics.median(run.rate for run in results["passwd-file"])
    base_cpu = statistics.median(run.per_cpu_second for run in results["passwd-file"])
    print(
        f"SMTP AUTH PLAIN logins/s (connect, EHLO, AUTH, QUIT); {args.clients} clients; median "
        f"of {args.rounds} alternating rounds of {args.seconds:g} s; backend={seikyou_auth.BACKEND}"
    )
    print("| store | logins/s | vs passwd-file | logins per server CPU-s | vs passwd-file |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in results.items():
        rate = statistics.median(run.rate for run in runs)
        efficiency = statistics.median(run.per_cpu_second for run in runs)
        errors = sum(run.errors for run in runs)
        note = f" ({errors} errors)" if errors else ""
        print(
            f"| {name}{note} | {rate:.0f} | {rate / base_rate:.0%} | {efficiency:.0f} "
            f"| {efficiency / base_cpu:.0%} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
