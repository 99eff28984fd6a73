"""SeikyouAuthSMTP on an embedder's own event loop (loop.create_server), no Controller thread."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from aiosmtpd_support import (
    DOMAIN,
    PLAIN_PASSWORD,
    PLAIN_USER,
    RecordingHandler,
    TlsFiles,
    no_delay,
)

import seikyou_auth
from seikyou_auth.accounts import PasswdFileStore
from seikyou_auth.integrations.aiosmtpd import SeikyouAuthSMTP
from seikyou_auth.sasl import Authenticator


async def reply(reader: asyncio.StreamReader) -> bytes:
    """One complete SMTP reply, continuation lines included."""
    lines = [await reader.readline()]
    while lines[-1][3:4] == b"-":
        lines.append(await reader.readline())
    return b"".join(lines)


async def cram_md5_login_on_own_loop(passwd_file: Path, tls_files: TlsFiles) -> list[bytes]:
    authenticator = Authenticator(PasswdFileStore(passwd_file, domain=DOMAIN))
    delay = no_delay()
    handler = RecordingHandler()
    server = await asyncio.get_running_loop().create_server(
        lambda: SeikyouAuthSMTP(
            handler, authenticator=authenticator, failure_delay=delay, hostname="own.loop.test"
        ),
        "127.0.0.1",
        0,
        ssl=tls_files.server_context(),
    )
    async with server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls_files.client_context()
        )
        replies = [await reply(reader)]
        for command in (b"EHLO client.test", b"AUTH CRAM-MD5"):
            writer.write(command + b"\r\n")
            replies.append(await reply(reader))
        challenge = base64.b64decode(replies[-1][4:].strip())
        address = f"{PLAIN_USER}@{DOMAIN}"
        response = seikyou_auth.cram_md5_response(address, PLAIN_PASSWORD.encode(), challenge)
        writer.write(base64.b64encode(response) + b"\r\n")
        replies.append(await reply(reader))
        writer.write(b"QUIT\r\n")
        replies.append(await reply(reader))
        writer.close()
        await writer.wait_closed()
    return replies


def test_own_loop_serves_cram_md5_over_implicit_tls(passwd_file: Path, tls_files: TlsFiles) -> None:
    greeting, ehlo, challenge, result, bye = asyncio.run(
        cram_md5_login_on_own_loop(passwd_file, tls_files)
    )
    assert greeting.startswith(b"220 own.loop.test")
    assert b"250-AUTH CRAM-MD5 LOGIN PLAIN\r\n" in ehlo
    assert challenge.startswith(b"334 ")
    assert result == b"235 2.7.0 Authentication successful\r\n"
    assert bye.startswith(b"221")
