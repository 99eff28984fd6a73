"""POP3 reply framing: status lines, response codes (RFC 2449, 3206) and multi-line bodies."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["err", "multiline", "ok", "stuffed_message"]


def ok(text: str = "") -> bytes:
    return f"+OK {text}\r\n".encode() if text else b"+OK\r\n"


def err(text: str, code: str | None = None) -> bytes:
    """``-ERR [CODE] text``; code is a RESP-CODE such as ``AUTH``, ``IN-USE``, ``SYS/TEMP``."""
    prefix = f"[{code}] " if code else ""
    return f"-ERR {prefix}{text}\r\n".encode()


def multiline(first: str, lines: Iterable[str]) -> bytes:
    """A ``+OK`` line and short protocol lines (CAPA, LIST, UIDL), which never start with '.'."""
    body = "".join(f"{line}\r\n" for line in lines)
    return f"+OK {first}\r\n{body}.\r\n".encode()


def stuffed_message(data: bytes) -> bytes:
    """A CRLF message as a multi-line body: dot-stuffed, ending in CRLF and the '.' line."""
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"
