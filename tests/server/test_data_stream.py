"""SMTP DATA as a stream: the block scanner agrees with a line-by-line reading of RFC 5321.

Whatever the client sends and however TCP splits it, the streamed receiver must end the
data at the same place, refuse for the same reason and store the same bytes as the plain
reading below, which takes one line at a time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seikyou_auth.server.lines import LineReader
from seikyou_auth.server.smtp.data import DataRefused, receive_message
from seikyou_auth.storage.spool import Spool

TEXT_LINE_MAX = 1000


def line_by_line(stream: bytes, max_size: int) -> tuple[DataRefused | None, bytes, bytes] | None:
    """(refusal, stored message, what follows the data), or None if the data never ends."""
    position = 0
    after_crlf = True
    size = 0
    too_big = too_long = bare = False
    stored: list[bytes] = []
    while True:
        end = stream.find(b"\n", position)
        if end < 0:
            return None
        line = stream[position : end + 1]
        position = end + 1
        if line == b".\r\n" and after_crlf:
            break
        after_crlf = line.endswith(b"\r\n")
        content = line[:-2] if after_crlf else line[:-1]
        too_long = too_long or len(line) > TEXT_LINE_MAX
        bare = bare or not after_crlf or b"\r" in content
        if line.startswith(b"."):
            line, content = line[1:], content[1:]
        size += len(line)
        too_big = too_big or size > max_size
        stored.append(content + b"\n")
    if too_big:
        refusal: DataRefused | None = DataRefused.TOO_BIG
    elif too_long:
        refusal = DataRefused.LINE_TOO_LONG
    elif bare:
        refusal = DataRefused.BARE_LINE_END
    else:
        refusal = None
    return refusal, b"" if refusal else b"".join(stored), stream[position:]


async def streamed(
    chunks: list[bytes], max_size: int, spool_dir: Path
) -> tuple[DataRefused | None, bytes, bytes]:
    stream = asyncio.StreamReader()
    pending = list(chunks)

    async def deliver_next_chunk() -> None:
        if pending:
            stream.feed_data(pending.pop(0))
        else:
            stream.feed_eof()

    lines = LineReader(stream, deliver_next_chunk)
    spool = Spool(spool_dir)
    try:
        refusal, _ = await receive_message(lines, spool, max_size)
        await spool.finish()
        stored = b"" if refusal else spool.path.read_bytes()
    finally:
        spool.discard()
    rest = bytes(lines.buffered) + b"".join(pending)
    return refusal, stored, rest


pieces = st.sampled_from(
    [b"a", b"b c", b"\xe3\x81\x82", b".", b"..", b"\r", b"\n", b"\r\n", b"\r\n.\r\n",
     b"\r.\r", b"\n.\n", b"x" * 997, b"y" * 999, b"\t"]
)  # fmt: skip


@st.composite
def transfers(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    body = b"".join(draw(st.lists(pieces, max_size=40)))
    stream = body + b"\r\n.\r\nQUIT\r\n"
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    return stream, [chunk for chunk in chunks if chunk]


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(transfer=transfers(), max_size=st.sampled_from([50, 2000, 10**6]))
def test_streamed_data_agrees_with_line_by_line_reading(
    transfer: tuple[bytes, list[bytes]], max_size: int, tmp_path: Path
) -> None:
    stream, chunks = transfer
    expected = line_by_line(stream, max_size)
    assert expected is not None  # every generated transfer ends with CRLF.CRLF
    assert asyncio.run(streamed(chunks, max_size, tmp_path)) == expected


def test_a_large_message_is_stored_whole_and_in_order(tmp_path: Path) -> None:
    lines = [b"line %07d " % number + b"z" * 60 + b"\r\n" for number in range(40_000)]
    body = b"".join(lines)
    chunks = [body[i : i + 65_536] for i in range(0, len(body), 65_536)] + [b".\r\n"]
    refusal, stored, rest = asyncio.run(streamed(chunks, 10**8, tmp_path))
    assert (refusal, rest) == (None, b"")
    assert stored == body.replace(b"\r\n", b"\n")


TRICKY = [
    b"\r" + b"y" * 1200 + b"\r\n.\r\n",  # a bare CR early in an overlong line
    b"." + b"y" * 1100 + b"\r\nok\r\n.\r\n",  # an overlong stuffed line
    b"y" * 1100 + b"\r\n.\r\nQUIT\r\n",  # the end right after an overlong line
    b"y" * 1100 + b"\n.\r\nQUIT\r\n.\r\n",  # an overlong line ending in a bare LF
    b"ab\r.\r\nc\r\n.\r\n",  # CR.CR inside the data
    b"..\r\n.x\r\n\r\n.\r\n",
]


async def _every_two_way_split(stream: bytes, max_size: int, spool_dir: Path) -> list[int]:
    """The cut positions where the streamed reading disagrees with the line-by-line one."""
    expected = line_by_line(stream, max_size)
    return [
        cut
        for cut in range(1, len(stream))
        if await streamed([stream[:cut], stream[cut:]], max_size, spool_dir) != expected
    ]


@pytest.mark.parametrize("stream", TRICKY)
@pytest.mark.parametrize("max_size", [1100, 1106])  # 1106: exactly the stuffed line's message
def test_every_two_way_split_of_tricky_transfers_agrees(
    stream: bytes, max_size: int, tmp_path: Path
) -> None:
    assert asyncio.run(_every_two_way_split(stream, max_size, tmp_path)) == []
