"""POP3 sessions per second on one node: node-local penalties and lock against ``[redis]``.

What sharing costs a successful login: the lease (``SET NX PX``, then its compare-and-delete
at QUIT) and the reset of the address's failure count (``DEL``), against a real
``redis-server`` on loopback. Two in-process servers run side by side, one without and one
with ``[redis]``; rounds alternate between them so a busy neighbour on the machine hits both
alike. Each session is APOP, STAT, QUIT, from ``--clients`` threads (one account each).

    python benches/multinode_logins.py [--sessions 400] [--rounds 5] [--clients 8]
"""

from __future__ import annotations

import argparse
import poplib
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.redis import redis_server
from support.serverkit import POP3, running_server

PASSWORD = "secret"


def sessions_per_second(port: int, sessions: int, clients: int) -> float:
    each = sessions // clients

    def run(index: int) -> None:
        for _ in range(each):
            client = poplib.POP3("127.0.0.1", port, timeout=10)
            client.apop(f"user{index}", PASSWORD)
            client.stat()
            client.quit()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return each * clients / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    accounts = {f"user{index}": PASSWORD for index in range(args.clients)}
    listeners = [{**POP3, "tls": "none"}]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        with (
            redis_server(root / "redis") as redis,
            running_server(root / "local", listeners, accounts=accounts) as local,
            running_server(
                root / "shared",
                listeners,
                settings={"redis": {"url": redis.url}},
                accounts=accounts,
            ) as shared,
        ):
            ports = {"node-local": local.port("pop3"), "redis": shared.port("pop3")}
            for port in ports.values():
                sessions_per_second(port, args.clients * 8, args.clients)  # warm-up
            rates: dict[str, list[float]] = {name: [] for name in ports}
            for _ in range(args.rounds):
                for name, port in ports.items():
                    rates[name].append(sessions_per_second(port, args.sessions, args.clients))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, values in rates.items():
        rounds = [round(value) for value in values]
        print(f"{name:>10}: median {medians[name]:.0f} sessions/s, rounds {rounds}")
    print(f"redis / node-local: {medians['redis'] / medians['node-local']:.2f}")


if __name__ == "__main__":
    main()
