"""The bytes of the Dovecot authentication protocol: lines, tab escaping, replies.

What Postfix (``smtpd_sasl_type = dovecot``) and Exim read, as Dovecot 2.3's auth
process writes it: one request or reply per line, fields separated by TAB, and
TAB, CR, LF and \\001 inside a field escaped as \\001 followed by ``t``, ``r``,
``n`` or ``1`` (protocol 1.2+).
"""

from __future__ import annotations

import os

import seikyou_auth

__all__ = [
    "MAJOR_VERSION",
    "MAX_LINE",
    "MINOR_VERSION",
    "cont",
    "fail",
    "handshake",
    "ok",
    "parse_uint",
    "split_fields",
    "tab_escape",
    "tab_unescape",
]

MAJOR_VERSION = 1
MINOR_VERSION = 2
# Dovecot's AUTH_CLIENT_MAX_LINE_LENGTH: a longer line (newline included) ends the connection.
MAX_LINE = 16384

# Security flags per mechanism, as Dovecot announces them; Postfix filters on these
# (smtpd_sasl_security_options = noplaintext, nodictionary, noactive).
MECHANISM_FLAGS = {
    "PLAIN": ("plaintext",),
    "LOGIN": ("plaintext",),
    "CRAM-MD5": ("dictionary", "active"),
}

_ESCAPES = {"\x01": "\x011", "\t": "\x01t", "\r": "\x01r", "\n": "\x01n"}
_UNESCAPES = {"0": "\x00", "1": "\x01", "t": "\t", "r": "\r", "n": "\n"}
_UINT_MAX = 2**32 - 1


def tab_escape(text: str) -> str:
    if not any(char in text for char in _ESCAPES):
        return text
    return "".join(_ESCAPES.get(char, char) for char in text)


def tab_unescape(text: str) -> str:
    if "\x01" not in text:
        return text
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        if char != "\x01":
            out.append(char)
            continue
        # As Dovecot's str_tabunescape: an unknown escape stands for itself, a
        # dangling \001 at the end is dropped.
        escaped = next(chars, "")
        out.append(_UNESCAPES.get(escaped, escaped))
    return "".join(out)


def split_fields(text: str) -> list[str]:
    return [tab_unescape(field) for field in text.split("\t")]


def parse_uint(text: str) -> int | None:
    """A 32-bit unsigned decimal as Dovecot's str_to_uint reads it: digits only."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= _UINT_MAX else None


def handshake(mechanisms: tuple[str, ...], connection_uid: int) -> bytes:
    """What the server sends as soon as a client connects."""
    lines = [f"VERSION\t{MAJOR_VERSION}\t{MINOR_VERSION}"]
    lines.extend("\t".join(("MECH", name, *MECHANISM_FLAGS[name])) for name in mechanisms)
    # The cookie only matters to Dovecot's master-process logins, which this server
    # never does; clients still expect the line.
    lines += [
        f"SPID\t{os.getpid()}",
        f"CUID\t{connection_uid}",
        f"COOKIE\t{os.urandom(16).hex()}",
        "DONE",
    ]
    return "".join(line + "\n" for line in lines).encode("ascii")


def _line(*fields: str) -> bytes:
    return ("\t".join(fields) + "\n").encode("utf-8", "surrogateescape")


def cont(request_id: int, challenge: bytes) -> bytes:
    return _line("CONT", str(request_id), seikyou_auth.encode_challenge(challenge).decode("ascii"))


def ok(request_id: int, user: str) -> bytes:
    return _line("OK", str(request_id), "user=" + tab_escape(user))


def fail(
    request_id: int,
    *,
    user: str | None = None,
    code: str | None = None,
    reason: str | None = None,
    temporary: bool = False,
) -> bytes:
    """``FAIL`` in Dovecot 2.3's field order: user, code, (temp), reason."""
    fields = ["FAIL", str(request_id)]
    if user is not None:
        fields.append("user=" + tab_escape(user))
    if code is not None:
        fields.append("code=" + code)
    if temporary:
        # Dovecot 2.3 says code=temp_fail; clients written against the protocol
        # page (and Dovecot 2.2) look for the bare "temp" flag.
        fields.append("temp")
    if reason is not None:
        fields.append("reason=" + tab_escape(reason))
    return _line(*fields)
