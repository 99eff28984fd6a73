"""POP3 logins per second: our server against Dovecot 2.3 on the same machine, in one run.

Both get the same accounts (``{PLAIN}`` passwords, so APOP works on both), the same few
messages per mailbox, a loopback high port and no TLS. Dovecot runs as a private instance
from its own config in a temporary directory, tuned for speed as its docs advise
(``service_count = 0`` and ``process_min_avail`` on pop3-login, logging off). The load comes
from ``benches/pop3_load.py`` in a separate process. Skips (exit 0) when Dovecot is not
installed; stops everything it started.

    python benches/dovecot_pop3.py [--seconds 5] [--clients 32] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seikyou_auth.storage.maildir_writer import MaildirStore

BENCHES = Path(__file__).resolve().parent
PASSWORD = "bench-Secret 1"
PREFIX = "bench"
MAIL_USER = "nobody"
GOAL = 1.5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_greeting(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(512).startswith(b"+OK"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


def populate(root: Path, accounts: int, messages: int) -> Path:
    """A passwd file and ``messages`` delivered messages for every account."""
    passwd = root / "passwd"
    names = [f"{PREFIX}{index:05d}" for index in range(accounts)]
    passwd.write_text("".join(f"{name}:{{PLAIN}}{PASSWORD}::::::\n" for name in names))
    store = MaildirStore(root / "mail", "bench.example")
    for name in names:
        for number in range(messages):
            body = f"From: a@example.org\nSubject: {number}\n\n" + "line of text\n" * 40
            store.deliver(name, body.encode())
    return passwd


def dovecot_config(
    root: Path, port: int, passwd: Path, login_processes: int, reuse_pop3: bool
) -> Path:
    # Beyond the tuning asked for: pop3 processes serve session after session (one at a
    # time each) instead of a fresh process per login.
    pop3_service = (
        f"service pop3 {{\n  service_count = 0\n  process_min_avail = {login_processes}\n}}"
        if reuse_pop3
        else ""
    )
    config = root / "dovecot.conf"
    config.write_text(
        f"""
instance_name = seikyou-bench-{os.getpid()}
base_dir = {root}/run
state_dir = {root}/state
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 apop
log_path = /dev/null
info_log_path = /dev/null
debug_log_path = /dev/null
auth_verbose = no
mail_location = maildir:{root}/mail/%u
mail_max_userip_connections = 1000
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {passwd}
}}
userdb {{
  driver = static
  args = uid={MAIL_USER} gid={pwd.getpwnam(MAIL_USER).pw_gid} home={root}/mail/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
  service_count = 0
  process_min_avail = {login_processes}
}}
{pop3_service}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
    )
    return config


def our_config(root: Path, port: int, passwd: Path, workers: int) -> Path:
    config = root / "seikyou.toml"
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    config.write_text(
        f"""
hostname = "bench.example"
data_dir = "{root}"
passwd_file = "{passwd}"
trusted_networks = ["127.0.0.0/8"]
workers = {workers}
event_loop = "{loop}"

[pop3]
cleartext_auth = "always"

[limits]
# All load comes from one address; Dovecot's counterpart is raised the same way.
max_connections_per_address = 10000

[[listener]]
protocol = "pop3"
address = "127.0.0.1"
port = {port}
tls = "none"
"""
    )
    return config


def load(port: int, args: argparse.Namespace, apop: bool) -> dict[str, object]:
    command = [
        sys.executable,
        str(BENCHES / "pop3_load.py"),
        "--port",
        str(port),
        "--prefix",
        PREFIX,
        "--password",
        PASSWORD,
        "--clients",
        str(args.clients),
        "--processes",
        str(args.load_processes),
        "--seconds",
        str(args.seconds),
    ]
    if apop:
        command.append("--apop")
    done = subprocess.run(command, capture_output=True, check=True, timeout=args.seconds + 60)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16, help="per load process")
    parser.add_argument("--load-processes", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="our server's processes")
    parser.add_argument("--dovecot-login-processes", type=int, default=2)
    parser.add_argument("--messages", type=int, default=3, help="per mailbox")
    parser.add_argument(
        "--dovecot-reuse-pop3", action="store_true", help="also reuse Dovecot's pop3 processes"
    )
    args = parser.parse_args()
    dovecot = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None
    )
    if dovecot is None or not os.path.exists("/usr/lib/dovecot/pop3"):
        print("SKIP: Dovecot with dovecot-pop3d is not installed")
        return 0
    accounts = args.clients * args.load_processes
    with tempfile.TemporaryDirectory(prefix="seikyou-pop3-bench-") as temp:
        ours_root = Path(temp) / "ours"
        theirs_root = Path(temp) / "dovecot"
        ours_root.mkdir()
        theirs_root.mkdir()
        ours_passwd = populate(ours_root, accounts, args.messages)
        theirs_passwd = populate(theirs_root, accounts, args.messages)
        os.chmod(temp, 0o755)
        os.chmod(theirs_root, 0o755)
        mail_uid = pwd.getpwnam(MAIL_USER)
        for path in (theirs_root / "mail").rglob("*"):
            os.chown(path, mail_uid.pw_uid, mail_uid.pw_gid)
        os.chown(theirs_root / "mail", mail_uid.pw_uid, mail_uid.pw_gid)

        ours_port, theirs_port = free_port(), free_port()
        ours = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from seikyou_auth.server.app import main; sys.exit(main(sys.argv[1]))",
                str(our_config(ours_root, ours_port, ours_passwd, args.workers)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        conf = dovecot_config(
            theirs_root,
            theirs_port,
            theirs_passwd,
            args.dovecot_login_processes,
            args.dovecot_reuse_pop3,
        )
        theirs = subprocess.Popen([dovecot, "-F", "-c", str(conf)], stderr=subprocess.DEVNULL)
        try:
            wait_for_greeting(ours_port, ours)
            wait_for_greeting(theirs_port, theirs)
            rates: dict[tuple[str, bool], list[float]] = {}
            failures: list[str] = []
            for _ in range(args.rounds):
                for apop in (False, True):
                    # Interleaved, so a busy neighbour on the machine hits both alike.
                    for side, port in (("dovecot", theirs_port), ("ours", ours_port)):
                        result = load(port, args, apop)
                        rates.setdefault((side, apop), []).append(
                            float(str(result["logins_per_second"]))
                        )
                        if result["failures"]:
                            failures.append(
                                f"{side}: {result['failures']} failures, "
                                f"first: {result['first_error']}"
                            )
        finally:
            stop(ours)
            stop(theirs)
    for failure in failures:
        print(f"  warning: {failure}")
    print(f"{'mode':<10} {'seikyou-auth':>14} {'Dovecot 2.3':>14} {'ratio':>7}")
    worst = float("inf")
    for apop in (False, True):
        ours_rate = statistics.median(rates[("ours", apop)])
        theirs_rate = statistics.median(rates[("dovecot", apop)])
        ratio = ours_rate / theirs_rate if theirs_rate else float("inf")
        worst = min(worst, ratio)
        mode = "APOP" if apop else "USER/PASS"
        print(f"{mode:<10} {ours_rate:>12.0f}/s {theirs_rate:>12.0f}/s {ratio:>6.2f}x")
    verdict = "meets" if worst >= GOAL else "misses"
    print(
        f"logins/s, median of {args.rounds} interleaved rounds of {args.seconds:g} s, "
        f"{args.clients * args.load_processes} clients; goal {GOAL}x Dovecot: {verdict} "
        f"({worst:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
