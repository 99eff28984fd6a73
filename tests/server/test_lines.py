"""The shared line reader's TLS-upgrade guard, on a real loopback socket."""

from __future__ import annotations

import asyncio
import socket
from typing import cast

import pytest

from seikyou_auth.server.lines import LineReader, LineTooLong


async def _upgrade_guard(client_sends_later: bytes) -> tuple[bytes, int, bool, bytes]:
    """Read one line, let ``client_sends_later`` reach the stream, then take what was pipelined.

    Returns the line, the count take_pipelined reported, whether the transport still reads,
    and what the stream holds after a further client write (nothing: reading is paused).
    """
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put((reader, writer))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    try:
        reader, writer = await accepted.get()
        lines = LineReader(reader)
        client.sendall(b"STARTTLS\r\n")
        line = await lines.line(512)
        # The reader is busy elsewhere (as a session is between commands) while more arrives.
        client.sendall(client_sends_later)
        await asyncio.sleep(0.2)
        transport = cast(asyncio.Transport, writer.transport)
        taken = await lines.take_pipelined(transport)
        still_reading = transport.is_reading()
        client.sendall(b"NOOP\r\n")
        await asyncio.sleep(0.2)
        transport.resume_reading()
        after = await asyncio.wait_for(reader.read(100), 2)
        writer.close()
        await writer.wait_closed()
        return line, taken, still_reading, after
    finally:
        client.close()
        server.close()
        await server.wait_closed()


def test_bytes_that_reached_the_stream_after_the_last_read_are_taken() -> None:
    line, taken, still_reading, after = asyncio.run(_upgrade_guard(b"MAIL FROM:<evil@x>\r\n"))
    assert line == b"STARTTLS\r\n"
    assert taken == len(b"MAIL FROM:<evil@x>\r\n")
    assert not still_reading
    # Only what the client sent after the guard, i.e. what start_tls would take as TLS bytes.
    assert after == b"NOOP\r\n"


def test_nothing_pipelined_counts_zero() -> None:
    line, taken, still_reading, after = asyncio.run(_upgrade_guard(b""))
    assert (line, taken, still_reading, after) == (b"STARTTLS\r\n", 0, False, b"NOOP\r\n")


async def _read(chunks: list[bytes], limit: int, count: int) -> list[bool | bytes]:
    """``count`` lines from ``chunks``, one chunk per read; an overlong line as its ``crlf``."""
    stream = asyncio.StreamReader()

    async def feed() -> None:
        stream.feed_data(chunks.pop(0))

    lines = LineReader(stream, before_wait=feed)
    results: list[bool | bytes] = []
    for _ in range(count):
        try:
            results.append(await lines.line(limit))
        except LineTooLong as error:
            results.append(error.crlf)
    return results


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"x" * 20 + b"\r\n.\r\n"], [True, b".\r\n"]),  # overlong, found in one read
        ([b"x" * 20 + b"\n.\r\n"], [False, b".\r\n"]),
        ([b"x" * 20, b"x\r\n.\r\n"], [True, b".\r\n"]),  # discarded across reads
        ([b"x" * 20, b"\n.\r\n"], [False, b".\r\n"]),
        ([b"x" * 20 + b"\r", b"\n.\r\n"], [True, b".\r\n"]),  # CR and LF in different reads
    ],
)
def test_overlong_line_reports_whether_it_ended_in_crlf(
    chunks: list[bytes], expected: list[bool | bytes]
) -> None:
    assert asyncio.run(_read(list(chunks), 10, len(expected))) == expected
