"""Authentications per second over the Dovecot auth protocol: our listener against
Dovecot 2.3's own auth process, on the same passwd-file, in one run.

Each side serves one UNIX socket from one process. The load is a separate process
(the same asyncio client for both): ``--clients`` connections, each doing what a
Postfix smtpd does, one ``AUTH PLAIN`` with an initial response at a time, account
``i`` and client address ``rip`` 127.0.0.(i+1) on connection ``i``. Dovecot runs as a
private ``dovecot -F`` instance from a temporary directory, logging off and its
penalty service off (every login here succeeds, so neither side ever delays). Rounds
alternate between the two so a busy neighbour on the machine hits both alike. Skips
(exit 0) without Dovecot.

    python benches/auth_socket.py [--seconds 5] [--rounds 3] [--clients 16] [--scheme PLAIN]
    python benches/auth_socket.py --serve CONFIG     # our listener alone (used by the bench)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import seikyou_auth

PASSWORD = b"bench-Secret 1"
PREFIX = "bench"
GOAL = 1.5


def serve(config_path: str) -> None:
    """Our auth listener as the server runs it: ServerApp's context and its auth server."""
    from seikyou_auth.server.app import ServerApp, bind_unix_socket
    from seikyou_auth.server.config import load_config
    from seikyou_auth.server.dovecot_auth import AuthConnection, start_auth_server

    config = load_config(config_path)
    (listener,) = config.listeners
    assert listener.path is not None

    async def main() -> None:
        app = ServerApp(config, primary=False)
        connections: set[AuthConnection] = set()
        sock = bind_unix_socket(listener.path, listener.mode)
        server = await start_auth_server(app.context(listener), sock, connections)
        async with server:
            await server.serve_forever()

    if config.event_loop == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


async def client(path: Path, index: int, deadline: float, counts: list[int]) -> None:
    user = f"{PREFIX}{index:05d}"
    # Each connection stands for another SMTP client, as behind a real Postfix.
    rip = f"127.0.{index // 250}.{index % 250 + 1}"
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(f"VERSION\t1\t0\nCPID\t{os.getpid()}\n".encode())
    while (await reader.readline()) != b"DONE\n":
        pass
    resp = base64.b64encode(b"\0" + user.encode() + b"\0" + PASSWORD).decode()
    request_id = 0
    while time.monotonic() < deadline:
        request_id += 1
        writer.write(
            f"AUTH\t{request_id}\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1"
            f"\trip={rip}\tsecured\tresp={resp}\n".encode()
        )
        reply = await reader.readline()
        if not reply.startswith(f"OK\t{request_id}\t".encode()):
            raise RuntimeError(f"unexpected reply {reply!r}")
        counts[0] += 1
    writer.close()


async def load(path: Path, clients: int, seconds: float) -> float:
    counts = [0]
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(client(path, index, deadline, counts) for index in range(clients)))
    return counts[0] / (time.monotonic() - started)


def measure(path: Path, clients: int, seconds: float) -> float:
    """Authentications/s, from a separate process so the client never shares our CPU time."""
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--load",
            str(path),
            "--clients",
            str(clients),
            "--seconds",
            str(seconds),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load on {path} failed: {done.stderr.strip()}")
    return float(json.loads(done.stdout)["per_second"])


def wait_for_socket(path: Path, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode}")
        if path.exists():
            return
        time.sleep(0.1)
    raise RuntimeError(f"no socket at {path}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def write_passwd(path: Path, clients: int, scheme: str) -> None:
    stored = seikyou_auth.hash_password(PASSWORD, scheme)
    path.write_text("".join(f"{PREFIX}{index:05d}:{stored}::::::\n" for index in range(clients)))


def our_config(root: Path, passwd: Path) -> Path:
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    config = root / "seikyou.toml"
    config.write_text(
        f"""
hostname = "bench.example"
data_dir = "{root}/data"
passwd_file = "{passwd}"
event_loop = "{loop}"

[[listener]]
protocol = "auth"
path = "{root}/auth"
mode = "0600"
"""
    )
    return config


def dovecot_config(root: Path, passwd: Path) -> Path:
    config = root / "dovecot.conf"
    config.write_text(
        f"""
instance_name = seikyou-auth-bench-{os.getpid()}
base_dir = {root}/run
state_dir = {root}/state
protocols =
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
log_path = /dev/null
info_log_path = /dev/null
debug_log_path = /dev/null
auth_verbose = no
passdb {{
  driver = passwd-file
  args = {passwd}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service auth {{
  unix_listener auth-client {{
    mode = 0600
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
    )
    return config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--scheme", default="PLAIN", help="stored scheme, e.g. SHA512-CRYPT")
    parser.add_argument("--serve", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--load", metavar="SOCKET", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if args.load:
        rate = asyncio.run(load(Path(args.load), args.clients, args.seconds))
        print(json.dumps({"per_second": rate}))
        return 0
    dovecot = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None
    )
    if dovecot is None:
        print("SKIP: Dovecot is not installed")
        return 0
    with tempfile.TemporaryDirectory(prefix="sa-auth-bench-", dir="/tmp") as temp:
        root = Path(temp)
        passwd = root / "passwd"
        write_passwd(passwd, args.clients, args.scheme)
        # Dovecot's auth process reads it as an unprivileged user.
        os.chmod(root, 0o755)
        os.chmod(passwd, 0o644)
        ours = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(our_config(root, passwd))]
        )
        theirs = subprocess.Popen([dovecot, "-F", "-c", str(dovecot_config(root, passwd))])
        sockets = {"ours": root / "auth", "dovecot": root / "run" / "auth-client"}
        try:
            wait_for_socket(sockets["ours"], ours)
            wait_for_socket(sockets["dovecot"], theirs)
            rates: dict[str, list[float]] = {"ours": [], "dovecot": []}
            for _ in range(args.rounds):
                for side in ("dovecot", "ours"):
                    rates[side].append(measure(sockets[side], args.clients, args.seconds))
        finally:
            stop(ours)
            stop(theirs)
    ours_rate, theirs_rate = statistics.median(rates["ours"]), statistics.median(rates["dovecot"])
    ratio = ours_rate / theirs_rate
    print(f"{'scheme':<14} {'seikyou-auth':>14} {'Dovecot 2.3':>14} {'ratio':>7}")
    print(f"{args.scheme:<14} {ours_rate:>12.0f}/s {theirs_rate:>12.0f}/s {ratio:>6.2f}x")
    verdict = "meets" if ratio >= GOAL else "misses"
    print(
        f"AUTH PLAIN/s over the auth socket, median of {args.rounds} interleaved rounds of "
        f"{args.seconds:g} s, {args.clients} clients; goal {GOAL}x Dovecot: {verdict} "
        f"({ratio:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
