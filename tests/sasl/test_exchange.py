"""The shared SASL exchange (seikyou_auth.sasl), on both backends, over a real passwd-file."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import seikyou_auth
from seikyou_auth.accounts import Account, PasswdFileStore
from seikyou_auth.errors import StoreUnavailable
from seikyou_auth.sasl import (
    Authenticator,
    Challenge,
    Failure,
    FailureReason,
    SaslServer,
    Success,
)

DOMAIN = "seikyou.ne.jp"
HOST = "ma1.seikyou.ne.jp"


def b64(data: bytes) -> bytes:
    return base64.b64encode(data) if data else b"="


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def authenticator(tmp_path: Path, active_backend: ModuleType) -> Authenticator:
    passwd = tmp_path / "passwd"
    passwd.write_text(
        "\n".join(
            [
                "# subscribers",
                "ma10001a:{PLAIN}kagi pass:1000:1000::/home/ma10001a::",
                "ma10002b:" + active_backend.hash_password(b"sesame", "CRAM-MD5") + ":::",
                "ma10003c:" + active_backend.hash_password(b"hidden", "SHA256-CRYPT") + ":::",
                "",
            ]
        )
    )
    return Authenticator(PasswdFileStore(passwd, domain=DOMAIN))


def exchange(
    authenticator: Authenticator,
    mechanism: str,
    initial: bytes | None,
    answer: Callable[[bytes], bytes] | None = None,
    rounds: int = 3,
) -> tuple[list[bytes], Challenge | Success | Failure]:
    """Drive one exchange; ``answer`` turns each raw challenge into the client's base64 line."""

    async def drive() -> tuple[list[bytes], Challenge | Success | Failure]:
        server = SaslServer(mechanism, authenticator, HOST)
        challenges: list[bytes] = []
        outcome = await server.start(initial)
        for _ in range(rounds):
            if not isinstance(outcome, Challenge):
                break
            challenges.append(outcome.data)
            assert answer is not None, f"unexpected challenge {outcome.data!r}"
            outcome = await server.step(answer(outcome.data))
        return challenges, outcome

    return run(drive())  # type: ignore[no-any-return]


def test_plain_with_initial_response_accepts_full_address(authenticator: Authenticator) -> None:
    _, outcome = exchange(authenticator, "PLAIN", b64(b"\0ma10001a@seikyou.ne.jp\0kagi pass"))
    assert isinstance(outcome, Success)
    assert outcome.account.name == "ma10001a"
    assert outcome.username == "ma10001a@seikyou.ne.jp"


def test_plain_without_initial_response_sends_empty_challenge(
    authenticator: Authenticator,
) -> None:
    challenges, outcome = exchange(
        authenticator, "plain", None, lambda _: b64(b"\0MA10001A\0kagi pass")
    )
    assert challenges == [b""]
    assert isinstance(outcome, Success)


@pytest.mark.parametrize("authzid", ["ma10001a", "ma10001a@seikyou.ne.jp", "MA10001A"])
def test_plain_authzid_naming_oneself_is_accepted(
    authenticator: Authenticator, authzid: str
) -> None:
    message = authzid.encode() + b"\0ma10001a\0kagi pass"
    _, outcome = exchange(authenticator, "PLAIN", b64(message))
    assert isinstance(outcome, Success)


def test_plain_authzid_of_another_user_is_refused(authenticator: Authenticator) -> None:
    _, outcome = exchange(authenticator, "PLAIN", b64(b"ma10002b\0ma10001a\0kagi pass"))
    assert outcome == Failure(FailureReason.CREDENTIALS, "ma10001a")


def test_wrong_password_and_unknown_user_fail_alike(authenticator: Authenticator) -> None:
    _, wrong = exchange(authenticator, "PLAIN", b64(b"\0ma10001a\0wrong"))
    _, unknown = exchange(authenticator, "PLAIN", b64(b"\0nobody99\0kagi pass"))
    assert isinstance(wrong, Failure) and isinstance(unknown, Failure)
    assert wrong.reason is unknown.reason is FailureReason.CREDENTIALS


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"*", FailureReason.CANCELLED),
        (b"=", FailureReason.MALFORMED),
        (b"AGFiYw", FailureReason.MALFORMED),
        (b"not base64!", FailureReason.MALFORMED),
        (base64.b64encode(b"ma10001a\0kagi pass"), FailureReason.MALFORMED),
    ],
)
def test_plain_bad_client_data(
    authenticator: Authenticator, line: bytes, reason: FailureReason
) -> None:
    _, outcome = exchange(authenticator, "PLAIN", None, lambda _: line)
    assert isinstance(outcome, Failure)
    assert outcome.reason is reason


def test_login_asks_username_then_password(authenticator: Authenticator) -> None:
    replies = {
        b"Username:": b64(b"ma10001a@seikyou.ne.jp"),
        b"Password:": b64(b"kagi pass"),
    }
    challenges, outcome = exchange(authenticator, "LOGIN", None, replies.__getitem__)
    assert challenges == [b"Username:", b"Password:"]
    assert isinstance(outcome, Success)
    assert outcome.account.name == "ma10001a"


def test_login_initial_response_is_the_username(authenticator: Authenticator) -> None:
    challenges, outcome = exchange(
        authenticator, "LOGIN", b64(b"ma10003c"), lambda _: b64(b"hidden")
    )
    assert challenges == [b"Password:"]
    assert isinstance(outcome, Success)


def test_login_cancel_at_password(authenticator: Authenticator) -> None:
    replies = {b"Username:": b64(b"ma10001a"), b"Password:": b"*"}
    _, outcome = exchange(authenticator, "LOGIN", None, replies.__getitem__)
    assert outcome == Failure(FailureReason.CANCELLED, "ma10001a")


def _cram_answer(username: str, secret: bytes) -> Callable[[bytes], bytes]:
    return lambda challenge: base64.b64encode(
        seikyou_auth.cram_md5_response(username, secret, challenge)
    )


@pytest.mark.parametrize(
    ("username", "secret"), [("ma10001a@seikyou.ne.jp", b"kagi pass"), ("ma10002b", b"sesame")]
)
def test_cram_md5_with_plain_and_prepared_state(
    authenticator: Authenticator, username: str, secret: bytes
) -> None:
    challenges, outcome = exchange(authenticator, "CRAM-MD5", None, _cram_answer(username, secret))
    assert len(challenges) == 1
    assert challenges[0].startswith(b"<") and challenges[0].endswith(b"@" + HOST.encode() + b">")
    assert isinstance(outcome, Success)


def test_cram_md5_cannot_use_a_crypt_hash(authenticator: Authenticator) -> None:
    _, outcome = exchange(authenticator, "CRAM-MD5", None, _cram_answer("ma10003c", b"hidden"))
    assert outcome == Failure(FailureReason.CREDENTIALS, "ma10003c")


def test_cram_md5_refuses_an_initial_response(authenticator: Authenticator) -> None:
    _, outcome = exchange(authenticator, "CRAM-MD5", b64(b"ma10001a 0123"))
    assert isinstance(outcome, Failure)
    assert outcome.reason is FailureReason.MALFORMED


def test_cram_md5_wrong_digest(authenticator: Authenticator) -> None:
    _, outcome = exchange(authenticator, "CRAM-MD5", None, _cram_answer("ma10001a", b"nope"))
    assert outcome == Failure(FailureReason.CREDENTIALS, "ma10001a")


def test_apop_needs_a_plaintext_scheme(authenticator: Authenticator) -> None:
    timestamp = seikyou_auth.apop_timestamp(HOST)

    async def check(user: str, secret: bytes) -> Account | None:
        digest = seikyou_auth.apop_digest(timestamp, secret)
        return await authenticator.check_apop(user, timestamp, digest.upper())

    account = run(check("ma10001a", b"kagi pass"))
    assert account is not None and account.name == "ma10001a"
    assert run(check("ma10001a", b"kagi")) is None
    assert run(check("ma10003c", b"hidden")) is None
    assert run(check("ghost", b"kagi pass")) is None


class _FixedStore:
    """A store other than the passwd-file (which already skips such lines), e.g. an SQL one."""

    def __init__(self, account: Account) -> None:
        self.account = account

    async def lookup(self, username: str) -> Account | None:
        return self.account if username == self.account.name else None


def test_an_unverifiable_stored_scheme_fails_like_a_wrong_password(
    active_backend: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    # MD5-crypt: Dovecot's libxcrypt knows it, this package does not implement it.
    md5_crypt = Account("ma10001a", "$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0")
    authenticator = Authenticator(_FixedStore(md5_crypt))
    with caplog.at_level(logging.WARNING, logger="seikyou_auth.sasl"):
        _, outcome = exchange(authenticator, "PLAIN", b64(b"\0ma10001a\0sekrit"))
    assert outcome == Failure(FailureReason.CREDENTIALS, "ma10001a")
    assert "ma10001a" in caplog.text
    assert "sekrit" not in caplog.text


class _BrokenStore:
    async def lookup(self, username: str) -> Account | None:
        raise StoreUnavailable("database down")


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_store_failure_is_reported_as_unavailable(
    active_backend: ModuleType, mechanism: str
) -> None:
    authenticator = Authenticator(_BrokenStore())

    def answer(challenge: bytes) -> bytes:
        if mechanism == "CRAM-MD5":
            return _cram_answer("ma10001a", b"x")(challenge)
        return b64(b"\0ma10001a\0x") if mechanism == "PLAIN" else b64(b"ma10001a")

    _, outcome = exchange(authenticator, mechanism, None, answer)
    assert isinstance(outcome, Failure)
    assert outcome.reason is FailureReason.UNAVAILABLE


def test_unknown_mechanism_is_refused(authenticator: Authenticator) -> None:
    with pytest.raises(ValueError, match="unsupported SASL mechanism"):
        SaslServer("DIGEST-MD5", authenticator, HOST)


def test_exchange_cannot_continue_after_its_outcome(authenticator: Authenticator) -> None:
    async def drive() -> None:
        server = SaslServer("PLAIN", authenticator, HOST)
        await server.start(b64(b"\0ma10001a\0kagi pass"))
        with pytest.raises(RuntimeError):
            await server.step(b"=")
        with pytest.raises(RuntimeError):
            await server.start(None)

    run(drive())


def test_secrets_stay_out_of_reprs(authenticator: Authenticator) -> None:
    _, outcome = exchange(authenticator, "PLAIN", b64(b"\0ma10001a\0kagi pass"))
    assert "kagi" not in repr(outcome)
    assert "kagi" not in repr(authenticator.store)
