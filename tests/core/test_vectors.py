"""Published vectors through both backends.

RFC 2195, RFC 2202, RFC 1939, RFC 4616, RFC 4954, the LOGIN draft and Dovecot's `doveadm pw`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from seikyou_auth.errors import SaslCancelled

Vectors = Callable[[str], Any]


def test_rfc2195_cram_md5_exchange(backend: ModuleType, vectors: Vectors) -> None:
    for case in vectors("rfc2195")["cram_md5"]:
        secret = case["secret"].encode()
        challenge = case["challenge"].encode()
        assert backend.encode_challenge(challenge) == case["challenge_base64"].encode()
        assert backend.decode_response(case["challenge_base64"].encode()) == challenge
        assert backend.cram_md5_digest(secret, challenge) == case["digest"]
        response = backend.cram_md5_response(case["username"], secret, challenge)
        assert backend.encode_challenge(response) == case["response_base64"].encode()
        message = backend.decode_response(case["response_base64"].encode())
        assert backend.parse_cram_md5_response(message) == (case["username"], case["digest"])
        assert backend.cram_md5_verify(secret, challenge, case["digest"])
        assert backend.cram_md5_verify(secret, challenge, case["digest"].upper())
        state = backend.cram_md5_prepare(secret)
        assert backend.cram_md5_verify_prepared(state, challenge, case["digest"])
        assert backend.cram_md5_verify_prepared(state, challenge, case["digest"].upper())
        assert not backend.cram_md5_verify(b"tanstaaftanstaaF", challenge, case["digest"])
        assert not backend.cram_md5_verify_prepared(state, challenge + b" ", case["digest"])


def test_rfc2202_hmac_md5(backend: ModuleType, vectors: Vectors) -> None:
    for case in vectors("rfc2202")["hmac_md5"]:
        key, data = bytes.fromhex(case["key_hex"]), bytes.fromhex(case["data_hex"])
        assert backend.cram_md5_digest(key, data) == case["digest"]
        assert backend.cram_md5_verify(key, data, case["digest"])
        assert backend.cram_md5_verify_prepared(backend.cram_md5_prepare(key), data, case["digest"])


def test_rfc1939_apop(backend: ModuleType, vectors: Vectors) -> None:
    for case in vectors("rfc1939")["apop"]:
        timestamp, secret = case["timestamp"].encode(), case["secret"].encode()
        assert case["greeting"].endswith(case["timestamp"])
        assert backend.apop_digest(timestamp, secret) == case["digest"]
        assert backend.apop_verify(timestamp, secret, case["digest"])
        assert backend.apop_verify(timestamp, secret, case["digest"].upper())
        assert not backend.apop_verify(timestamp, secret + b"x", case["digest"])
        assert not backend.apop_verify(timestamp.replace(b"1896", b"1897"), secret, case["digest"])


def test_rfc4616_plain(backend: ModuleType, vectors: Vectors) -> None:
    for case in vectors("rfc4616")["plain"]:
        expected = (case["authzid"], case["authcid"], case["passwd"].encode())
        assert backend.parse_plain(case["message"].encode()) == expected


def test_rfc4954_plain_initial_response(backend: ModuleType, vectors: Vectors) -> None:
    for case in vectors("rfc4954")["plain"]:
        message = backend.decode_response(case["response_base64"].encode())
        assert message == case["message"].encode()
        expected = (case["authzid"], case["authcid"], case["passwd"].encode())
        assert backend.parse_plain(message) == expected
        assert backend.encode_challenge(message) == case["response_base64"].encode()


def test_rfc4954_cram_md5_exchange(backend: ModuleType, vectors: Vectors) -> None:
    for case in vectors("rfc4954")["cram_md5"]:
        challenge = backend.decode_response(case["challenge_base64"].encode())
        assert challenge == case["challenge"].encode()
        assert backend.encode_challenge(challenge) == case["challenge_base64"].encode()
        message = backend.decode_response(case["response_base64"].encode())
        assert backend.parse_cram_md5_response(message) == (case["username"], case["digest"])


def test_rfc4954_empty_and_cancelled_responses(backend: ModuleType, vectors: Vectors) -> None:
    case = vectors("rfc4954")
    assert backend.decode_response(case["empty_response"].encode()) == b""
    with pytest.raises(SaslCancelled) as cancelled:
        backend.decode_response(case["cancel"].encode())
    assert cancelled.type is SaslCancelled


def test_login_challenges(backend: ModuleType, vectors: Vectors) -> None:
    prompts = vectors("login")["challenges"]
    assert backend.LOGIN_CHALLENGES == tuple(prompt["text"].encode() for prompt in prompts)
    assert all(type(challenge) is bytes for challenge in backend.LOGIN_CHALLENGES)
    for challenge, prompt in zip(backend.LOGIN_CHALLENGES, prompts, strict=True):
        assert backend.encode_challenge(challenge) == prompt["base64"].encode()


def test_dovecot_cram_md5_state(backend: ModuleType, vectors: Vectors) -> None:
    for case in vectors("dovecot_cram_md5")["stored"]:
        stored = case["stored"]
        assert stored.startswith("{CRAM-MD5}")
        password = case["password"].encode()
        state = backend.cram_md5_prepare(password)
        assert type(state) is bytes
        assert state.hex() == stored.removeprefix("{CRAM-MD5}")
        challenge = b"<12345678901234567890.1700000000@ma1.seikyou.ne.jp>"
        digest = backend.cram_md5_digest(password, challenge)
        assert backend.cram_md5_verify_prepared(state, challenge, digest)
