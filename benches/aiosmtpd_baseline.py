"""Stock aiosmtpd with an authenticator equivalent to seikyou-auth's, for benches/loadgen.py.

The same passwd-file, the same checks: PLAIN and LOGIN through aiosmtpd's own
mechanisms and an ``authenticator`` that verifies with ``seikyou_auth.verify_password``;
CRAM-MD5 (which aiosmtpd lacks) as a handler ``auth_CRAM__MD5`` method using
``seikyou_auth.cram_md5_verify_prepared``. Unknown users are checked against a
decoy, as seikyou-auth does, so both servers do the same work per login.

    python benches/aiosmtpd_baseline.py --passwd FILE --port 0 [--uvloop] [--workers N]

prints ``ready PORT`` once it listens and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import logging
import os
import signal
import socket
import sys
import warnings
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

import seikyou_auth
from seikyou_auth import schemes

DOMAIN = "seikyou.ne.jp"
DECOY = "{PLAIN}" + os.urandom(8).hex()


def load_passwd(path: Path) -> dict[str, str]:
    accounts = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, stored = line.split(":")[:2]
            accounts[name.lower()] = stored
    return accounts


def canonical(username: str) -> str:
    name = username.lower()
    if name.endswith("@" + DOMAIN):
        name = name[: -len(DOMAIN) - 1]
    return name


class PasswdAuthenticator:
    """aiosmtpd's ``authenticator`` callable: PLAIN and LOGIN."""

    def __init__(self, accounts: dict[str, str]) -> None:
        self.accounts = accounts

    def __call__(
        self, server: SMTP, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        try:
            username = auth_data.login.decode()
        except UnicodeDecodeError:
            return AuthResult(success=False, handled=False)
        stored = self.accounts.get(canonical(username))
        ok = seikyou_auth.verify_password(stored or DECOY, auth_data.password)
        return AuthResult(success=ok and stored is not None, auth_data=username)


class Handler:
    def __init__(self, accounts: dict[str, str]) -> None:
        self.accounts = accounts
        self.decoy_state = os.urandom(32)

    async def auth_CRAM__MD5(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) != 1:
            await server.push("501 5.5.2 CRAM-MD5 takes no initial response")
            return AuthResult(success=False, handled=True)
        challenge = seikyou_auth.cram_md5_challenge(server.hostname)
        response = await server.challenge_auth(challenge)
        if not isinstance(response, bytes):
            return AuthResult(success=False, handled=True)
        try:
            username, digest = seikyou_auth.parse_cram_md5_response(response)
        except (seikyou_auth.SaslError, binascii.Error):
            await server.push("501 5.5.2 Cannot decode response")
            return AuthResult(success=False, handled=True)
        stored = self.accounts.get(canonical(username))
        state = schemes.cram_md5_state(stored) if stored else None
        ok = seikyou_auth.cram_md5_verify_prepared(state or self.decoy_state, challenge, digest)
        return AuthResult(success=ok and state is not None, auth_data=username)

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        return "250 2.0.0 Ok"


async def serve(passwd: Path, port: int, reuse_port: bool, announce: bool) -> None:
    accounts = load_passwd(passwd)
    authenticator = PasswdAuthenticator(accounts)
    handler = Handler(accounts)
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname="aiosmtpd.bench",
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=False,
        )

    server = await loop.create_server(
        factory, "127.0.0.1", port, reuse_address=True, reuse_port=reuse_port or None
    )
    if announce:
        print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


def run(passwd: Path, port: int, use_uvloop: bool, reuse_port: bool, announce: bool) -> None:
    serving = serve(passwd, port, reuse_port, announce)
    if use_uvloop:
        import uvloop

        uvloop.run(serving)
    else:
        asyncio.run(serving)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passwd", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # aiosmtpd warns about auth_require_tls=False once per connection; that is our choice
    # (the same as seikyou-auth's cleartext_auth from trusted networks), not news.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
    if args.workers == 1:
        run(args.passwd, args.port, args.uvloop, False, True)
        return 0
    port = args.port
    if port == 0:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    children = []
    for index in range(args.workers):
        pid = os.fork()
        if pid == 0:
            try:
                run(args.passwd, port, args.uvloop, True, index == 0)
            finally:
                os._exit(0)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for pid in children:
            os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for pid in children:
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
