"""The attacks of issue 9, each a bounded asyncio coroutine, and the process that runs one.

``python attackers.py NAME JSON`` runs ``ATTACKS[NAME](tally, **JSON)`` until its ``seconds``
are over or SIGTERM, then prints the outcome counts as one JSON line. tests/hostile/attackkit.py
(``attack``) starts these processes for the tests and benches/soak.py: an attack in a process
of its own spends its own CPU and fds, not the probe's. Every attacker binds the loopback
source address it is given (127.x.y.z, never the server's 127.0.0.1) and every loop ends at its
deadline.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import resource
import signal
import socket
import ssl
import sys
from collections import Counter
from collections.abc import Awaitable, Callable

# Counted when the process could not keep its own deadline: it was starved of CPU.
OVERRAN = "overran its deadline"
# The server listens here, and only this address is in its trusted_networks.
SERVER_ADDRESS = "127.0.0.1"


def client_tls_context() -> ssl.SSLContext:
    """The server's certificate is a generated self-signed one: trust it blindly."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _connect(
    port: int,
    source: str,
    *,
    tls: bool = False,
    rcvbuf: int | None = None,
    timeout: float = 10,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((source, 0))
        sock.setblocking(False)
        await asyncio.wait_for(
            asyncio.get_running_loop().sock_connect(sock, (SERVER_ADDRESS, port)), timeout
        )
        return await asyncio.wait_for(
            asyncio.open_connection(
                sock=sock,
                ssl=client_tls_context() if tls else None,
                server_hostname=SERVER_ADDRESS if tls else None,
            ),
            timeout,
        )
    except BaseException:
        sock.close()
        raise


async def _reply(reader: asyncio.StreamReader, timeout: float = 20) -> int:
    """The code of one complete SMTP reply (multi-line replies read to their last line)."""
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionError("closed by server")
        if line[3:4] != b"-":
            return int(line[:3])


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()


class Tally:
    """Outcome counts of an attack, printed as its JSON summary."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, outcome: str, amount: int = 1) -> None:
        self.counts[outcome] += amount


async def _until(
    tally: Tally, deadline: float, worker: Callable[[], Awaitable[None]], pause: float
) -> None:
    """Repeat ``worker`` until the deadline; count a failed round and wait ``pause``."""
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        try:
            await asyncio.wait_for(worker(), max(0.01, deadline - loop.time()))
        except (OSError, ConnectionError, TimeoutError, ssl.SSLError, ValueError) as error:
            if loop.time() < deadline:
                tally.add(f"error {type(error).__name__}")
            await asyncio.sleep(pause)


async def hold_open(
    tally: Tally, port: int, sources: list[str], per_source: int, seconds: float, payload: str
) -> None:
    """Rows 3 and 4: connections that send ``payload`` (maybe nothing) and then wait forever.

    Each slot reconnects when the server closes it, so the server is under the same pressure
    for the whole attack.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    data = bytes.fromhex(payload)

    async def slot(source: str) -> None:
        async def once() -> None:
            reader, writer = await _connect(port, source)
            tally.add("connected")
            try:
                if data:
                    writer.write(data)
                while await reader.read(4096):
                    pass
                tally.add("closed by server")
            finally:
                _close(writer)
            await asyncio.sleep(1.0)  # a bot's reconnect: enough to keep any cap full

        await _until(tally, deadline, once, 0.2)

    await asyncio.gather(*(slot(source) for source in sources for _ in range(per_source)))


async def ehlo_flood(
    tally: Tally, port: int, sources: list[str], per_source: int, seconds: float
) -> None:
    """Row 1: pipeline ``EHLO`` without ever reading, with a tiny receive buffer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    batch = b"EHLO flood.example\r\n" * 512

    async def flooder(source: str) -> None:
        async def once() -> None:
            _reader, writer = await _connect(port, source, rcvbuf=4096)
            tally.add("connected")
            try:
                while loop.time() < deadline:
                    writer.write(batch)
                    await writer.drain()
                    tally.add("bytes sent", len(batch))
            finally:
                _close(writer)

        await _until(tally, deadline, once, 0.2)

    await asyncio.gather(*(flooder(source) for source in sources for _ in range(per_source)))


async def data_flood(
    tally: Tally,
    port: int,
    source: str,
    recipient: str,
    connections: int,
    lines: int,
    seconds: float,
) -> None:
    """Row 2: DATA of ``a\\r\\n`` x ``lines`` on the MX, on several connections at once."""
    chunk = b"a\r\n" * 65536

    async def sender(index: int) -> None:
        reader, writer = await _connect(port, source)
        try:
            await _reply(reader)
            for command in (
                b"EHLO flood.example",
                b"MAIL FROM:<flood@example.org>",
                f"RCPT TO:<{recipient}>".encode(),
                b"DATA",
            ):
                writer.write(command + b"\r\n")
                tally.add(f"{command.split()[0].decode()} {await _reply(reader)}")
            writer.write(f"Subject: flood {index}\r\n\r\n".encode())
            for _ in range(lines // 65536):
                writer.write(chunk)
                await writer.drain()
            writer.write(b"a\r\n" * (lines % 65536) + b".\r\n")
            tally.add(f"end of data {await _reply(reader, timeout=seconds)}")
            writer.write(b"QUIT\r\n")
            await _reply(reader)
        finally:
            _close(writer)

    results = await asyncio.wait_for(
        asyncio.gather(*(sender(index) for index in range(connections)), return_exceptions=True),
        seconds,
    )
    for result in results:
        if isinstance(result, BaseException):
            tally.add(f"error {type(result).__name__}")


async def pipeline(tally: Tally, port: int, source: str, batch: int, seconds: float) -> None:
    """Row 5: pipeline ``RSET`` in large batches and read every reply, as fast as possible.

    RSET may stand anywhere in a pipelined group (RFC 2920 3.1); NOOP may only end one, and a
    server may hang up on a client that pipelines past it, as Postfix does.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def once() -> None:
        reader, writer = await _connect(port, source)
        try:
            await _reply(reader)
            writer.write(b"EHLO noop.example\r\n")
            await _reply(reader)
            while loop.time() < deadline:
                writer.write(b"RSET\r\n" * batch)
                replies = 0
                while replies < batch:  # counted in bulk: the attacker must outpace the server
                    chunk = await asyncio.wait_for(reader.read(1 << 20), 20)
                    if not chunk:
                        raise ConnectionError("closed by server")
                    replies += chunk.count(b"\n")
                tally.add("replies", batch)
        finally:
            _close(writer)

    await _until(tally, deadline, once, 0.2)


async def auth_failures(
    tally: Tally, port: int, sources: list[str], per_source: int, address: str, seconds: float
) -> None:
    """Row 8: failed AUTH PLAIN on implicit TLS, over and over, against an expensive account."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    token = base64.b64encode(f"\0{address}\0wrong-password".encode())

    async def attacker(source: str) -> None:
        async def once() -> None:
            reader, writer = await _connect(port, source, tls=True)
            tally.add("connected")
            try:
                await _reply(reader)
                writer.write(b"EHLO fail.example\r\n")
                await _reply(reader)
                while loop.time() < deadline:
                    writer.write(b"AUTH PLAIN " + token + b"\r\n")
                    code = await _reply(reader, timeout=60)
                    tally.add(f"AUTH {code}")
                    if code == 421:
                        return
            finally:
                _close(writer)

        await _until(tally, deadline, once, 0.2)

    await asyncio.gather(*(attacker(source) for source in sources for _ in range(per_source)))


async def slow_retrieval(
    tally: Tally, port: int, source: str, user: str, password: str, seconds: float
) -> None:
    """Soak only: POP3S sessions that read every message slowly and delete nothing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def once() -> None:
        reader, writer = await _connect(port, source, tls=True)
        try:
            for command in (b"", f"USER {user}".encode(), f"PASS {password}".encode(), b"RETR 1"):
                if command:
                    writer.write(command + b"\r\n")
                line = await asyncio.wait_for(reader.readline(), 20)
                if not line.startswith(b"+OK"):
                    tally.add("refused")
                    return
            while (line := await asyncio.wait_for(reader.readline(), 20)) not in (b".\r\n", b""):
                await asyncio.sleep(0.001)
            tally.add("retrieved")
            writer.write(b"QUIT\r\n")
            await asyncio.wait_for(reader.readline(), 20)
        finally:
            _close(writer)

    await _until(tally, deadline, once, 0.5)


async def rcpt_harvest(tally: Tally, port: int, source: str, domain: str, seconds: float) -> None:
    """Row 9: RCPT TO one unknown local user after another until the server hangs up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def once() -> None:
        reader, writer = await _connect(port, source)
        try:
            await _reply(reader)
            for command in (b"EHLO harvest.example", b"MAIL FROM:<harvest@example.org>"):
                writer.write(command + b"\r\n")
                await _reply(reader)
            for index in range(20_000):
                writer.write(f"RCPT TO:<nobody{index}@{domain}>\r\n".encode())
                code = await _reply(reader)
                tally.add(f"RCPT {code}")
                if code == 421:
                    return
        finally:
            _close(writer)

    await _until(tally, deadline, once, 0.5)


SMUGGLED_BODY = (
    b"Subject: innocent\r\n\r\nhello\r.\r\n"
    b"MAIL FROM:<ceo@bank.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
    b"Subject: smuggled\r\n\r\nsmuggled body\r\n.\r\n"
)


async def smuggle(
    tally: Tally, port: int, source: str, address: str, password: str, seconds: float
) -> None:
    """Row 11: authenticated submissions whose body hides a second message behind ``\\r.\\r\\n``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    token = base64.b64encode(f"\0{address}\0{password}".encode())

    async def once() -> None:
        reader, writer = await _connect(port, source, tls=True)
        try:
            await _reply(reader)
            for command in (
                b"EHLO smuggle.example",
                b"AUTH PLAIN " + token,
                f"MAIL FROM:<{address}>".encode(),
                f"RCPT TO:<{address}>".encode(),
                b"DATA",
            ):
                writer.write(command + b"\r\n")
                await _reply(reader)
            writer.write(SMUGGLED_BODY)
            tally.add(f"end of data {await _reply(reader)}")
            writer.write(b"QUIT\r\n")
            await _reply(reader)
        finally:
            _close(writer)
        await asyncio.sleep(0.5)

    await _until(tally, deadline, once, 0.5)


async def pop3_logins(
    tally: Tally, port: int, source: str, user: str, password: str, seconds: float
) -> None:
    """Row 10: log in to a (huge) mailbox over POP3S, STAT, QUIT, over and over."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def once() -> None:
        reader, writer = await _connect(port, source, tls=True)
        try:
            for command in (b"", f"USER {user}".encode(), f"PASS {password}".encode(), b"STAT"):
                if command:
                    writer.write(command + b"\r\n")
                line = await asyncio.wait_for(reader.readline(), 60)
                if not line.startswith(b"+OK"):
                    tally.add("refused")
                    return
            tally.add("logged in")
            writer.write(b"QUIT\r\n")
            await asyncio.wait_for(reader.readline(), 60)
        finally:
            _close(writer)

    await _until(tally, deadline, once, 0.5)


async def trickle(
    port: int,
    source: str,
    *,
    setup: list[str],
    drip: bytes,
    interval: float,
    observe: float,
    smtp: bool = True,
    octets: int = 1,
) -> float | None:
    """Row 6: after ``setup`` commands, send ``drip`` round and round, ``octets`` at a time
    every ``interval`` seconds.

    Returns how long after the setup the server closed the connection, or None when it was
    still open after ``observe`` seconds.
    """
    loop = asyncio.get_running_loop()
    reader, writer = await _connect(port, source)
    try:
        for command in ["", *setup]:
            if command:
                writer.write(command.encode() + b"\r\n")
            if smtp:
                await _reply(reader)
            elif not (await asyncio.wait_for(reader.readline(), 20)).startswith(b"+OK"):
                raise ConnectionError(f"POP3 refused {command!r}")
        start = loop.time()

        async def until_closed() -> None:
            while await reader.read(4096):
                pass

        closed = asyncio.ensure_future(until_closed())
        sent = 0
        while not closed.done() and loop.time() - start < observe:
            piece = bytes(drip[(sent + index) % len(drip)] for index in range(octets))
            try:
                writer.write(piece)
            except (ConnectionError, RuntimeError):
                break
            sent += octets
            await asyncio.wait([closed], timeout=interval)
        if closed.done():
            with contextlib.suppress(ConnectionError, OSError):
                closed.result()
            return loop.time() - start
        closed.cancel()
        return None
    finally:
        _close(writer)


async def slowloris(
    tally: Tally,
    port: int,
    source: str,
    setup: list[str],
    drip: str,
    interval: float,
    connections: int,
    seconds: float,
    smtp: bool = True,
) -> None:
    """Soak only: ``connections`` trickling clients, each reconnecting once cut off."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def client() -> None:
        async def once() -> None:
            if deadline - loop.time() < 2.0:  # too late for a connection to prove anything
                await asyncio.sleep(max(0.0, deadline - loop.time()))
                return
            held = await trickle(
                port,
                source,
                setup=setup,
                drip=drip.encode(),
                interval=interval,
                # Ends a second before the deadline, so a never-cut connection is counted.
                observe=max(0.0, deadline - loop.time() - 1.0),
                smtp=smtp,
            )
            tally.add("cut off" if held is not None else "still open at the end")

        await _until(tally, deadline, once, 0.5)

    await asyncio.gather(*(client() for _ in range(connections)))


ATTACKS: dict[str, Callable[..., Awaitable[None]]] = {
    "hold_open": hold_open,
    "ehlo_flood": ehlo_flood,
    "data_flood": data_flood,
    "pipeline": pipeline,
    "auth_failures": auth_failures,
    "slow_retrieval": slow_retrieval,
    "slowloris": slowloris,
    "rcpt_harvest": rcpt_harvest,
    "smuggle": smuggle,
    "pop3_logins": pop3_logins,
}


def _attack_main(name: str, params_json: str) -> None:
    _raise_fd_limit()
    tally = Tally()
    params = json.loads(params_json)

    async def run() -> None:
        task = asyncio.ensure_future(ATTACKS[name](tally, **params))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        # Connections cut off while the attack is being stopped: counted, not printed.
        loop.set_exception_handler(
            lambda _loop, context: tally.add(
                f"unretrieved {type(context.get('exception')).__name__}"
            )
        )
        # Thousands of connections can keep a loop too busy to notice its deadlines on time;
        # the process still ends within a few seconds of them.
        done, _ = await asyncio.wait([task], timeout=params["seconds"] + 3)
        if not done:
            tally.add(OVERRAN)
            task.cancel()
            await asyncio.wait([task], timeout=5)
        if task.done() and not task.cancelled() and task.exception() is not None:
            tally.add(f"crashed {type(task.exception()).__name__}")

    try:
        asyncio.run(run())
    finally:
        print(json.dumps(dict(tally.counts)), flush=True)


if __name__ == "__main__":
    _attack_main(sys.argv[1], sys.argv[2])
