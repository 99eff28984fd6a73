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


def constant_time_eq(a: bytes, b: bytes) -> bool:
    """True when ``a == b``; the time does not depend on where they differ."""
    require_bytes(a, "a")
    require_bytes(b, "b")
    return hmac.compare_digest(a, b)
