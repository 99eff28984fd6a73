"""``quoted``: client-supplied text made safe for one log field (logfmt value).

The one rule for every log line that shows text a client chose (a user name, a sender, a
smarthost's reply): the login line (``server/policy.py``), the server's other lines and the
account stores' warnings all call it, so a name like ``evil client=203.0.113.9`` or one with a
CR/LF can never pass for a field or a line of its own.
"""

from __future__ import annotations

import re

__all__ = ["CLIENT_TEXT_MAX", "quoted"]

CLIENT_TEXT_MAX = 255

# Every character a log reader could misread: quotes and backslashes (which would end or
# escape the quoted value), controls (a CR/LF would forge a whole line), and anything
# outside printable ASCII (terminals and filters disagree about it).
_UNSAFE_IN_QUOTES = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_NAMED_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def quoted(text: str) -> str:
    """Client-supplied text as one logfmt value: in double quotes, escaped, cut to 255 chars."""
    return '"' + _UNSAFE_IN_QUOTES.sub(_escape, text[:CLIENT_TEXT_MAX]) + '"'
