"""CRAM-MD5 (RFC 2195): challenges, HMAC-MD5 digests, Dovecot's prepared ``{CRAM-MD5}`` state."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

from seikyou_auth._pure import _md5
from seikyou_auth._pure._ct import digest_bytes, require_bytes, require_str

_INNER_PAD = bytes(octet ^ 0x36 for octet in range(256))
_OUTER_PAD = bytes(octet ^ 0x5C for octet in range(256))
# Labels of letters, digits, '-' and '_' joined by single dots: what may follow '@' in a msg-id.
_HOSTNAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_MAX_HOSTNAME = 253
_RANDOM_DIGITS = 20


def msg_id(hostname: str) -> bytes:
    """``b"<DIGITS.UNIXTIME@hostname>"``: 20 CSPRNG decimal digits make a repeat negligible.

    The hostname must be dot-separated labels of letters, digits, '-' and '_' (at most 253
    characters), else ValueError: anything else could break the msg-id syntax of RFC 5322 or,
    with CR/LF, the protocol line the challenge is sent in.
    """
    require_str(hostname, "hostname")
    if len(hostname) > _MAX_HOSTNAME or not _HOSTNAME.fullmatch(hostname):
        raise ValueError("hostname must be a domain name (letters, digits, '-', '_', '.')")
    digits = secrets.randbelow(10**_RANDOM_DIGITS)
    return f"<{digits:0{_RANDOM_DIGITS}d}.{int(time.time())}@{hostname}>".encode("ascii")


def cram_md5_challenge(hostname: str) -> bytes:
    """A fresh RFC 2195 challenge ``b"<DIGITS.UNIXTIME@hostname>"``."""
    return msg_id(hostname)


def cram_md5_digest(secret: bytes, challenge: bytes) -> str:
    """HMAC-MD5(secret, challenge) as 32 lowercase hex digits."""
    require_bytes(secret, "secret")
    require_bytes(challenge, "challenge")
    return hmac.digest(secret, challenge, "md5").hex()


def cram_md5_response(username: str, secret: bytes, challenge: bytes) -> bytes:
    """The client's answer: ``b"username digest"``."""
    require_str(username, "username")
    return f"{username} {cram_md5_digest(secret, challenge)}".encode()


def cram_md5_verify(secret: bytes, challenge: bytes, digest: str) -> bool:
    """True when ``digest`` (hex, either case) is HMAC-MD5(secret, challenge); constant time."""
    require_bytes(secret, "secret")
    require_bytes(challenge, "challenge")
    require_str(digest, "digest")
    expected = hmac.digest(secret, challenge, "md5")
    claimed = digest_bytes(digest)
    return claimed is not None and hmac.compare_digest(expected, claimed)


def _padded_key(secret: bytes) -> bytes:
    if len(secret) > _md5.BLOCK_OCTETS:
        return hashlib.md5(secret).digest().ljust(_md5.BLOCK_OCTETS, b"\x00")  # noqa: S324  (RFC 2104)
    return secret.ljust(_md5.BLOCK_OCTETS, b"\x00")


def cram_md5_prepare(secret: bytes) -> bytes:
    """Dovecot's 32-octet ``{CRAM-MD5}`` state: outer a,b,c,d then inner a,b,c,d (LE u32)."""
    require_bytes(secret, "secret")
    key = _padded_key(secret)
    outer = _md5.compress(_md5.IV, _md5.block_words(key.translate(_OUTER_PAD)))
    inner = _md5.compress(_md5.IV, _md5.block_words(key.translate(_INNER_PAD)))
    return _md5.state_bytes(outer) + _md5.state_bytes(inner)


def cram_md5_verify_prepared(state: bytes, challenge: bytes, digest: str) -> bool:
    """:func:`cram_md5_verify` from a prepared state; ValueError unless it is 32 octets."""
    require_bytes(state, "state")
    require_bytes(challenge, "challenge")
    require_str(digest, "digest")
    if len(state) != 32:
        raise ValueError("a prepared CRAM-MD5 state is 32 octets")
    claimed = digest_bytes(digest)
    if claimed is None:
        return False
    inner = _md5.finish(_md5.state_from_bytes(state[16:]), challenge, _md5.BLOCK_OCTETS)
    # The inner digest's words are the outer block's first words, already little-endian.
    expected = _md5.compress_hmac_outer(_md5.state_from_bytes(state[:16]), *inner)
    return hmac.compare_digest(_md5.state_bytes(expected), claimed)
