"""POP3 login load: many concurrent clients, each connect → greeting → login → STAT → QUIT.

Run it in its own process against any POP3 server (ours or Dovecot) and it prints one JSON
object: completed logins, failures, elapsed seconds and logins per second. Client ``i`` logs
in as ``{prefix}{i:05d}`` with the shared password, so no two clients contend for one
mailbox lock.

    python benches/pop3_load.py --port 10110 --password secret --clients 32 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import re
import time
from dataclasses import dataclass

_TIMESTAMP = re.compile(rb"<[^<>]*>")


@dataclass
class Tally:
    logins: int = 0
    failures: int = 0
    first_error: str = ""


async def _expect_ok(reader: asyncio.StreamReader) -> bytes:
    line = await reader.readline()
    if not line.startswith(b"+OK"):
        raise ConnectionError(line.decode("ascii", "replace").strip() or "connection closed")
    return line


async def one_session(host: str, port: int, user: str, password: bytes, apop: bool) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        greeting = await _expect_ok(reader)
        if apop:
            stamps = _TIMESTAMP.findall(greeting)
            if not stamps:
                raise ConnectionError("greeting has no APOP timestamp")
            digest = hashlib.md5(stamps[-1] + password).hexdigest()
            writer.write(f"APOP {user} {digest}\r\n".encode())
            await _expect_ok(reader)
        else:
            writer.write(f"USER {user}\r\n".encode())
            await _expect_ok(reader)
            writer.write(b"PASS " + password + b"\r\n")
            await _expect_ok(reader)
        writer.write(b"STAT\r\n")
        await _expect_ok(reader)
        writer.write(b"QUIT\r\n")
        await _expect_ok(reader)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def _client(args: argparse.Namespace, index: int, deadline: float, tally: Tally) -> None:
    user = f"{args.prefix}{index:05d}"
    while time.monotonic() < deadline and tally.logins + tally.failures < args.max_logins:
        try:
            await one_session(args.host, args.port, user, args.password.encode(), args.apop)
            tally.logins += 1
        except (OSError, ConnectionError) as error:
            tally.failures += 1
            tally.first_error = tally.first_error or f"{user}: {error}"
            await asyncio.sleep(0.01)


async def _run(args: argparse.Namespace, first_client: int) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + args.seconds
    await asyncio.gather(
        *(_client(args, first_client + i, deadline, tally) for i in range(args.clients))
    )
    return tally


def _process(args: argparse.Namespace, first_client: int) -> Tally:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_run(args, first_client))
    return uvloop.run(_run(args, first_client))


def measure(args: argparse.Namespace) -> dict[str, object]:
    """Run the load from ``args.processes`` processes; the totals as a dict."""
    started = time.monotonic()
    if args.processes == 1:
        tallies = [_process(args, 0)]
    else:
        with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
            tallies = pool.starmap(
                _process, [(args, p * args.clients) for p in range(args.processes)]
            )
    elapsed = time.monotonic() - started
    logins = sum(t.logins for t in tallies)
    return {
        "mode": "APOP" if args.apop else "USER/PASS",
        "clients": args.clients * args.processes,
        "logins": logins,
        "failures": sum(t.failures for t in tallies),
        "first_error": next((t.first_error for t in tallies if t.first_error), ""),
        "seconds": round(elapsed, 3),
        "logins_per_second": round(logins / elapsed, 1) if elapsed else 0.0,
    }


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", default="bench", help="account i is PREFIX + 5 digits")
    parser.add_argument("--password", required=True)
    parser.add_argument("--apop", action="store_true", help="APOP instead of USER/PASS")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients per process")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-logins", type=int, default=200_000, help="per process")
    return parser


if __name__ == "__main__":
    print(json.dumps(measure(parser().parse_args())))
