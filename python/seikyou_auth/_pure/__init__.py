"""Pure-Python twin of ``seikyou_auth._core``: same names, same results, same errors."""

from seikyou_auth._pure._apop import apop_digest, apop_timestamp, apop_verify
from seikyou_auth._pure._cram import (
    cram_md5_challenge,
    cram_md5_digest,
    cram_md5_prepare,
    cram_md5_response,
    cram_md5_verify,
    cram_md5_verify_prepared,
)
from seikyou_auth._pure._ct import constant_time_eq
from seikyou_auth._pure._sasl import (
    LOGIN_CHALLENGES,
    MAX_RESPONSE_OCTETS,
    decode_plain,
    decode_response,
    encode_challenge,
    parse_cram_md5_response,
    parse_login_password,
    parse_login_username,
    parse_plain,
)
from seikyou_auth._pure._schemes import (
    SCHEMES,
    hash_password,
    parse_stored,
    scheme_info,
    verify_password,
)

__all__ = [
    "LOGIN_CHALLENGES",
    "MAX_RESPONSE_OCTETS",
    "SCHEMES",
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
]
