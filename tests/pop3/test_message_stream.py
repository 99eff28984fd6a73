"""RETR and TOP send a message a chunk at a time: the result must not depend on the chunks.

The reference is the plain whole-message rendering (RFC 1939 §3 and §7): CRLF line ends,
dot-stuffing, the final '.' line; TOP cuts after the blank line and n body lines.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from seikyou_auth.server.pop3 import replies
from seikyou_auth.server.pop3.transaction import _Stuffer, _TopCut
from seikyou_auth.storage.maildir_reader import to_crlf


def whole_top(data: bytes, lines: int) -> bytes:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return replies.stuffed_message(data)
    head, body = data[: end + 4], data[end + 4 :]
    kept = body.split(b"\r\n")[:lines] if lines else []
    excerpt = b"".join(line + b"\r\n" for line in kept)
    return replies.stuffed_message(head + excerpt[: len(body)])


def streamed(data: bytes, size: int, top: _TopCut | None = None) -> bytes:
    stuffer = _Stuffer()
    out = []
    for start in range(0, len(data), size):
        part = stuffer.crlf(data[start : start + size])
        if top is not None:
            part = top.cut(part)
        out.append(stuffer.stuff(part))
        if top is not None and top.done:
            stuffer.held_cr = False
            break
    out.append(stuffer.end())
    return b"".join(out)


messages = st.lists(
    st.sampled_from([b"a", b".", b"..", b"\n", b"\r", b"\r\n", b"\n\n", b"\r\n\r\n", b"x y"]),
    max_size=30,
).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(data=messages, size=st.integers(1, 9))
def test_retr_stream_equals_the_whole_message_rendering(data: bytes, size: int) -> None:
    assert streamed(data, size) == replies.stuffed_message(to_crlf(data))


@settings(max_examples=500, deadline=None)
@given(data=messages, size=st.integers(1, 9), lines=st.integers(0, 4))
def test_top_stream_equals_the_whole_message_cut(data: bytes, size: int, lines: int) -> None:
    assert streamed(data, size, _TopCut(lines)) == whole_top(to_crlf(data), lines)
