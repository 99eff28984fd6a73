"""SASL wire formats: base64 lines (RFC 4954 / RFC 4648), PLAIN (RFC 4616), LOGIN, CRAM-MD5."""

from __future__ import annotations

import binascii

from seikyou_auth._pure._ct import require_bytes
from seikyou_auth.errors import SaslCancelled, SaslError

MAX_RESPONSE_OCTETS = 12288
MAX_FIELD_OCTETS = 255
LOGIN_CHALLENGES: tuple[bytes, bytes] = (b"Username:", b"Password:")

_HEX_DIGITS = b"0123456789abcdefABCDEF"
_LOGIN_FORBIDDEN = b"\x00\r\n"


def decode_response(line: bytes) -> bytes:
    """Decode one base64 client response line (without CRLF), strictly.

    ``b"="`` is the empty response and ``b""`` decodes to it too; ``b"*"`` cancels.
    Only the canonical RFC 4648 encoding is accepted: padding required, no
    whitespace, no characters outside the alphabet, unused trailing bits zero.
    """
    require_bytes(line, "line")
    if len(line) > MAX_RESPONSE_OCTETS:
        raise SaslError(f"response longer than {MAX_RESPONSE_OCTETS} octets")
    if line == b"=":
        return b""
    if line == b"*":
        raise SaslCancelled("authentication cancelled by the client")
    try:
        decoded = binascii.a2b_base64(line, strict_mode=True)
    except binascii.Error:
        raise SaslError("invalid base64") from None
    # Re-encoding is the cheapest exact test for canonical form (zero trailing bits);
    # strict_mode alone accepts e.g. b"QR==".
    if binascii.b2a_base64(decoded, newline=False) != line:
        raise SaslError("invalid base64")
    return decoded


def encode_challenge(data: bytes) -> bytes:
    """Base64 of a server challenge, without line break."""
    require_bytes(data, "data")
    return binascii.b2a_base64(data, newline=False)


def _utf8(field: bytes, what: str) -> str:
    try:
        return field.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError(f"{what} is not valid UTF-8") from None


def parse_plain(message: bytes) -> tuple[str, str, bytes]:
    """Split an RFC 4616 PLAIN message into ``(authzid, authcid, passwd)``."""
    require_bytes(message, "message")
    fields = message.split(b"\x00")
    if len(fields) != 3:
        raise SaslError("PLAIN message must contain exactly two NUL separators")
    authzid, authcid, passwd = fields
    if not authcid:
        raise SaslError("PLAIN authentication identity is empty")
    if not passwd:
        raise SaslError("PLAIN password is empty")
    if (
        len(authzid) > MAX_FIELD_OCTETS
        or len(authcid) > MAX_FIELD_OCTETS
        or len(passwd) > MAX_FIELD_OCTETS
    ):
        raise SaslError("PLAIN field longer than 255 octets")
    return (
        _utf8(authzid, "authorization identity"),
        _utf8(authcid, "authentication identity"),
        passwd,
    )


def _login_payload(data: bytes, what: str) -> None:
    require_bytes(data, "data")
    if not data:
        raise SaslError(f"LOGIN {what} is empty")
    if len(data) > MAX_FIELD_OCTETS:
        raise SaslError(f"LOGIN {what} longer than 255 octets")
    if len(data.translate(None, _LOGIN_FORBIDDEN)) != len(data):
        raise SaslError(f"LOGIN {what} contains NUL, CR or LF")


def parse_login_username(data: bytes) -> str:
    """The decoded LOGIN user name: non-empty UTF-8, at most 255 octets, no NUL/CR/LF."""
    _login_payload(data, "user name")
    return _utf8(data, "LOGIN user name")


def parse_login_password(data: bytes) -> bytes:
    """The decoded LOGIN password: non-empty, at most 255 octets, no NUL/CR/LF."""
    _login_payload(data, "password")
    return data


def parse_cram_md5_response(message: bytes) -> tuple[str, str]:
    """Split a CRAM-MD5 response at its last space into ``(username, lowercase digest)``."""
    require_bytes(message, "message")
    username, space, digest = message.rpartition(b" ")
    if not space:
        raise SaslError("CRAM-MD5 response has no space")
    if not username:
        raise SaslError("CRAM-MD5 user name is empty")
    if len(digest) != 32 or digest.translate(None, _HEX_DIGITS):
        raise SaslError("CRAM-MD5 digest must be 32 hexadecimal digits")
    return _utf8(username, "CRAM-MD5 user name"), digest.decode("ascii").lower()


def decode_plain(line: bytes) -> tuple[str, str, bytes]:
    """``parse_plain(decode_response(line))`` in one call: the servers' PLAIN path."""
    return parse_plain(decode_response(line))
