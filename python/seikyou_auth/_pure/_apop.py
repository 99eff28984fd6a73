"""APOP (RFC 1939 section 7): greeting timestamps and MD5 digests."""

from __future__ import annotations

import hashlib
import hmac

from seikyou_auth._pure._cram import msg_id
from seikyou_auth._pure._ct import digest_bytes, require_bytes, require_str


def apop_timestamp(hostname: str) -> bytes:
    """A fresh msg-id ``b"<DIGITS.UNIXTIME@hostname>"``; no '=' or '+' that would upset mpop."""
    return msg_id(hostname)


def apop_digest(timestamp: bytes, secret: bytes) -> str:
    """MD5(timestamp + secret) as 32 lowercase hex digits."""
    require_bytes(timestamp, "timestamp")
    require_bytes(secret, "secret")
    return hashlib.md5(timestamp + secret).hexdigest()  # noqa: S324  (RFC 1939 fixes MD5)


def apop_verify(timestamp: bytes, secret: bytes, digest: str) -> bool:
    """True when ``digest`` (hex, either case) is MD5(timestamp + secret); constant time."""
    require_bytes(timestamp, "timestamp")
    require_bytes(secret, "secret")
    require_str(digest, "digest")
    expected = hashlib.md5(timestamp + secret).digest()  # noqa: S324  (RFC 1939 fixes MD5)
    claimed = digest_bytes(digest)
    return claimed is not None and hmac.compare_digest(expected, claimed)
