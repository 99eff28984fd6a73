"""Constant-time comparison and the argument checks every primitive shares."""

from __future__ import annotations

import hmac

HEX_DIGITS = "0123456789abcdefABCDEF"


def require_bytes(value: object, name: str) -> None:
    """Raise TypeError unless ``value`` is ``bytes`` (as the Rust backend's ``&[u8]`` does)."""
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


def require_str(value: object, name: str) -> None:
    """Raise TypeError unless ``value`` is ``str``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, not {type(value).__name__}")


def digest_bytes(digest: str) -> bytes | None:
    """The 16 octets of a 32-hex-digit digest of either case, or None when malformed.

    Only the format is inspected here, never the value, so rejecting a malformed
    digest early tells a client nothing about the expected one.
    """
    if len(digest) != 32 or digest.strip(HEX_DIGITS):
        return None
    return bytes.fromhex(digest)


def constant_time_eq(a: bytes | str, b: bytes | str) -> bool:
    """True when ``a == b``; the time does not depend on where they differ.

    Either side is ``bytes`` or ``str``; a ``str`` is compared as its UTF-8 form.
    """
    return hmac.compare_digest(_octets(a, "a"), _octets(b, "b"))


def _octets(value: bytes | str, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"{name} must be bytes or str, not {type(value).__name__}")
