"""seikyou-auth: SASL, CRAM-MD5, APOP and password-scheme primitives.

The Rust extension ``seikyou_auth._core`` is used when it is importable;
``seikyou_auth._pure`` is its pure-Python twin with identical behaviour.
``SEIKYOU_AUTH_BACKEND=python`` forces the twin, ``=rust`` makes a missing
extension an ImportError.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING

from seikyou_auth.errors import SaslCancelled, SaslError, StoreUnavailable, UnsupportedScheme

__all__ = [
    "BACKEND",
    "LOGIN_CHALLENGES",
    "MAX_RESPONSE_OCTETS",
    "SCHEMES",
    "SaslCancelled",
    "SaslError",
    "StoreUnavailable",
    "UnsupportedScheme",
    "apop_digest",
    "apop_timestamp",
    "apop_verify",
    "constant_time_eq",
    "cram_md5_challenge",
    "cram_md5_digest",
    "cram_md5_prepare",
    "cram_md5_response",
    "cram_md5_verify",
    "cram_md5_verify_prepared",
    "decode_plain",
    "decode_response",
    "encode_challenge",
    "hash_password",
    "parse_cram_md5_response",
    "parse_login_password",
    "parse_login_username",
    "parse_plain",
    "parse_stored",
    "scheme_info",
    "verify_password",
    "verify_password_async",
]


def _load_backend() -> ModuleType:
    choice = os.environ.get("SEIKYOU_AUTH_BACKEND", "").strip().lower()
    if choice == "python":
        from seikyou_auth import _pure

        return _pure
    if choice == "rust":
        from seikyou_auth import _core

        return _core
    if choice:
        raise ImportError(f"SEIKYOU_AUTH_BACKEND must be 'rust' or 'python', not {choice!r}")
    try:
        from seikyou_auth import _core
    except ImportError:
        from seikyou_auth import _pure

        return _pure
    return _core


if TYPE_CHECKING:
    # Both backends have the signatures of the extension's stub.
    from seikyou_auth import _core as _backend
else:
    _backend = _load_backend()
BACKEND: str = "rust" if _backend.__name__ == "seikyou_auth._core" else "python"

decode_response = _backend.decode_response
decode_plain = _backend.decode_plain
MAX_RESPONSE_OCTETS: int = _backend.MAX_RESPONSE_OCTETS
encode_challenge = _backend.encode_challenge
parse_plain = _backend.parse_plain
parse_login_username = _backend.parse_login_username
parse_login_password = _backend.parse_login_password
LOGIN_CHALLENGES: tuple[bytes, bytes] = _backend.LOGIN_CHALLENGES
cram_md5_challenge = _backend.cram_md5_challenge
cram_md5_digest = _backend.cram_md5_digest
cram_md5_response = _backend.cram_md5_response
parse_cram_md5_response = _backend.parse_cram_md5_response
cram_md5_prepare = _backend.cram_md5_prepare
cram_md5_verify = _backend.cram_md5_verify
cram_md5_verify_prepared = _backend.cram_md5_verify_prepared
apop_timestamp = _backend.apop_timestamp
apop_digest = _backend.apop_digest
apop_verify = _backend.apop_verify
constant_time_eq = _backend.constant_time_eq
hash_password = _backend.hash_password
verify_password = _backend.verify_password
scheme_info = _backend.scheme_info
parse_stored = _backend.parse_stored
SCHEMES: tuple[str, ...] = _backend.SCHEMES

from seikyou_auth.schemes import verify_password_async  # noqa: E402  (needs the backend above)
