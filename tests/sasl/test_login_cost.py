"""What a login check costs: the decoy is a typical account's hash, penalised addresses get none,
and a flood of slow checks from one address leaves other addresses' logins near the front."""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

import seikyou_auth
from seikyou_auth import schemes
from seikyou_auth.accounts import Account, PasswdFileStore
from seikyou_auth.errors import StoreUnavailable
from seikyou_auth.sasl import Authenticator, Failure, FailureReason, SaslServer, Success

DOMAIN = "seikyou.ne.jp"
ATTACKER = "203.0.113.9"
SUBSCRIBER = "198.51.100.7"


def _spy_on_verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The scheme of every stored value a password is checked against, in order.

    Wraps the core primitive, so checks made inline and in hashing threads are both seen.
    """
    verified: list[str] = []
    real_verify = seikyou_auth.verify_password

    def spy(stored: str, password: bytes) -> bool:
        verified.append(schemes.scheme_of(stored))
        return bool(real_verify(stored, password))

    monkeypatch.setattr(seikyou_auth, "verify_password", spy)
    return verified


@pytest.fixture
def passwd(tmp_path: Path, active_backend: ModuleType) -> Path:
    """Mostly SHA256-CRYPT, as a store migrated to one scheme is; one PLAIN, one ARGON2ID."""
    path = tmp_path / "passwd"
    lines = [
        *(
            f"ma1000{n}a:" + active_backend.hash_password(b"sha pass", "SHA256-CRYPT") + ":::"
            for n in range(1, 4)
        ),
        "ma20001p:{PLAIN}plain pass:::",
        "ma30001z:" + active_backend.hash_password(b"slow pass", "ARGON2ID") + ":::",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_decoy_is_the_most_common_scheme_looked_up(
    passwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authenticator = Authenticator(PasswdFileStore(passwd, DOMAIN))
    verified = _spy_on_verifications(monkeypatch)

    async def scenario() -> None:
        assert await authenticator.check_password("nobody", b"x") is None
        assert verified == ["SHA512-CRYPT"], "before any lookup: Dovecot's default scheme"
        verified.clear()
        for name in ("ma10001a", "ma10002a", "ma30001z", "ma10003a"):
            assert await authenticator.check_password(name, b"wrong") is None
        # Each its own check; the one ARGON2ID account costs what it costs, alone.
        assert verified == ["SHA256-CRYPT", "SHA256-CRYPT", "ARGON2ID", "SHA256-CRYPT"]
        verified.clear()
        assert await authenticator.check_password("nobody", b"x") is None
        assert await authenticator.check_password("ma20001p", b"wrong") is None
        # Unknown user: a typical account's check; a cheaper account's failure: padded to it.
        assert verified == ["SHA256-CRYPT", "PLAIN", "SHA256-CRYPT"]
        verified.clear()
        account = await authenticator.check_password("ma10002a", b"sha pass")
        assert account is not None and account.name == "ma10002a"
        assert verified == ["SHA256-CRYPT"], "a success costs only its own check"

    asyncio.run(scenario())


def test_the_decoy_is_a_real_stored_value(passwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Its parameters (rounds, memory) are what that scheme's accounts really use.
    authenticator = Authenticator(PasswdFileStore(passwd, DOMAIN))
    checked: list[str] = []
    real_verify = seikyou_auth.verify_password

    def spy(stored: str, password: bytes) -> bool:
        checked.append(stored)
        return bool(real_verify(stored, password))

    async def scenario() -> None:
        await authenticator.check_password("ma10001a", b"sha pass")
        monkeypatch.setattr(seikyou_auth, "verify_password", spy)
        await authenticator.check_password("ghost", b"sha pass")

    asyncio.run(scenario())
    store = PasswdFileStore(passwd, DOMAIN)
    assert checked == [account.password for account in store.accounts()[:1]]


def _penalising(addresses: set[str]) -> Callable[[str], bool]:
    return addresses.__contains__


def test_a_penalised_address_costs_no_decoy_or_padding(
    passwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PasswdFileStore(passwd, DOMAIN)
    authenticator = Authenticator(store, is_penalised=_penalising({ATTACKER}))
    verified = _spy_on_verifications(monkeypatch)

    async def scenario() -> None:
        assert await authenticator.check_password("ma10001a", b"x", client=SUBSCRIBER) is None
        verified.clear()
        assert await authenticator.check_password("nobody", b"x", client=ATTACKER) is None
        assert verified == []
        assert await authenticator.check_password("ma20001p", b"wrong", client=ATTACKER) is None
        assert verified == ["PLAIN"], "the account's own check, no padding"
        verified.clear()
        # A penalised address can still log in: the real check is never skipped.
        account = await authenticator.check_password("ma10003a", b"sha pass", client=ATTACKER)
        assert account is not None and account.name == "ma10003a"
        assert verified == ["SHA256-CRYPT"]
        verified.clear()
        # Others, and callers that name no client, still pay the decoy.
        assert await authenticator.check_password("nobody", b"x", client=SUBSCRIBER) is None
        assert await authenticator.check_password("nobody", b"x") is None
        assert verified == ["SHA256-CRYPT", "SHA256-CRYPT"]

    asyncio.run(scenario())


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_sasl_server_passes_the_client_on(
    passwd: Path, monkeypatch: pytest.MonkeyPatch, mechanism: str
) -> None:
    authenticator = Authenticator(
        PasswdFileStore(passwd, DOMAIN), is_penalised=_penalising({ATTACKER})
    )
    verified = _spy_on_verifications(monkeypatch)

    async def fail_as(client: str) -> Failure | Success:
        sasl = SaslServer(mechanism, authenticator, "ma1.test", client=client)
        if mechanism == "PLAIN":
            outcome = await sasl.start(base64.b64encode(b"\0nobody\0x"))
        else:
            await sasl.start(base64.b64encode(b"nobody"))
            outcome = await sasl.step(base64.b64encode(b"x"))
        assert isinstance(outcome, Failure | Success)
        return outcome

    assert asyncio.run(fail_as(ATTACKER)) == Failure(FailureReason.CREDENTIALS, "nobody")
    assert verified == []
    assert asyncio.run(fail_as(SUBSCRIBER)) == Failure(FailureReason.CREDENTIALS, "nobody")
    assert verified == ["SHA512-CRYPT"]


class _Gate:
    """Holds every slow check in its hashing thread until opened; counts the ones held."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open = threading.Event()
        self.entered = 0
        self.finished: list[str] = []
        self.held_prefix = b""  # which passwords' checks are held: all of them by default
        self._lock = threading.Lock()
        self._real_verify = seikyou_auth.verify_password
        monkeypatch.setattr(seikyou_auth, "verify_password", self._verify)

    def _verify(self, stored: str, password: bytes) -> bool:
        with self._lock:
            self.entered += 1
        if password.startswith(self.held_prefix):
            self.open.wait(timeout=30)
        result = bool(self._real_verify(stored, password))
        with self._lock:
            self.finished.append(password.decode())
        return result

    async def wait_for_entered(self, count: int) -> None:
        for _ in range(500):  # 5 s at most
            if self.entered >= count:
                return
            await asyncio.sleep(0.01)
        pytest.fail(f"{self.entered} checks reached the hashing threads, {count} expected")


@pytest.fixture
def gate(active_backend: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Gate]:
    held = _Gate(monkeypatch)
    yield held
    held.open.set()  # a failed test must not leave the process's hashing threads held


def _slow_stored(backend: ModuleType) -> str:
    return str(backend.hash_password(b"right", "SHA512-CRYPT"))


def test_a_flood_from_one_address_delays_another_by_one_hash_at_most(
    active_backend: ModuleType, gate: _Gate
) -> None:
    stored = _slow_stored(active_backend)
    queue = schemes.SlowHashQueue(size=64, per_client=32)

    async def scenario() -> None:
        flood = [
            asyncio.create_task(queue.verify(stored, f"flood{n}".encode(), ATTACKER))
            for n in range(20)
        ]
        await gate.wait_for_entered(1)
        probe = asyncio.create_task(queue.verify(stored, b"right", SUBSCRIBER))
        await asyncio.sleep(0)
        gate.open.set()
        assert await probe is True
        assert await asyncio.gather(*flood) == [False] * 20

    asyncio.run(scenario())
    # One address has one check in a thread at a time, and then goes to the back of the line.
    assert gate.finished.index("right") <= 1, gate.finished


def test_strangers_failing_do_not_hold_up_a_subscriber_at_another_address(
    active_backend: ModuleType, gate: _Gate, tmp_path: Path
) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text(f"ma10001a:{active_backend.hash_password(b'right', 'SHA512-CRYPT')}:::\n")
    # Written long ago, so lookups read nothing more and every check reaches the queue at once.
    os.utime(passwd, (time.time() - 60, time.time() - 60))
    authenticator = Authenticator(PasswdFileStore(passwd, DOMAIN), login_queue_per_address=32)
    gate.open.set()  # the first check, which picks the decoy, goes through
    assert asyncio.run(authenticator.check_password("ma10001a", b"right")) is not None
    gate.open.clear()
    gate.entered, gate.finished = 0, []

    async def scenario() -> Account | None:
        strangers = [f"127.0.0.{n}" for n in range(2, 6)]
        flood = [
            asyncio.create_task(
                authenticator.check_password(f"ghost{n}", f"flood{n}".encode(), client=client)
            )
            for n in range(6)
            for client in strangers
        ]
        await gate.wait_for_entered(1)
        login = asyncio.create_task(
            authenticator.check_password("ma10001a", b"right", client=SUBSCRIBER)
        )
        await asyncio.sleep(0)
        gate.open.set()
        account = await login
        assert await asyncio.gather(*flood) == [None] * len(flood)
        return account

    account = asyncio.run(scenario())
    assert account is not None and account.name == "ma10001a"
    # Four stranger addresses ahead of it in the rotation, then the subscriber: never the
    # 24 checks the strangers queued.
    assert gate.finished.index("right") <= 5, gate.finished


def test_penalised_addresses_hash_in_their_own_lane(
    active_backend: ModuleType, gate: _Gate, tmp_path: Path
) -> None:
    # A hash cannot be interrupted: were the strangers' checks on the subscribers' threads,
    # a subscriber would wait for the one running. Held forever here, they hold nobody up.
    passwd = tmp_path / "passwd"
    passwd.write_text(f"ma10001a:{_slow_stored(active_backend)}:::\n")
    strangers = [f"127.0.0.{n}" for n in range(2, 10)]
    authenticator = Authenticator(
        PasswdFileStore(passwd, DOMAIN), is_penalised=_penalising(set(strangers))
    )
    gate.held_prefix = b"flood"

    async def scenario() -> None:
        flood = [
            asyncio.create_task(
                authenticator.check_password("ma10001a", f"flood{n}".encode(), client=client)
            )
            for n in range(2)
            for client in strangers
        ]
        await gate.wait_for_entered(1)
        for _ in range(3):
            account = await authenticator.check_password("ma10001a", b"right", client=SUBSCRIBER)
            assert account is not None
        assert gate.finished == ["right"] * 3
        assert not any(task.done() for task in flood)
        gate.open.set()
        assert await asyncio.gather(*flood) == [None] * len(flood)

    asyncio.run(scenario())


def test_bounds_answer_temporary_failure_and_free_up(
    active_backend: ModuleType, gate: _Gate
) -> None:
    stored = _slow_stored(active_backend)
    queue = schemes.SlowHashQueue(size=2, per_client=2)
    threads = schemes.HASH_THREADS

    async def scenario() -> None:
        running = [
            asyncio.create_task(queue.verify(stored, b"x", f"127.0.1.{n}")) for n in range(threads)
        ]
        await gate.wait_for_entered(threads)
        assert queue.waiting == 0
        first = asyncio.create_task(queue.verify(stored, b"right", ATTACKER))
        second = asyncio.create_task(queue.verify(stored, b"right", ATTACKER))
        await asyncio.sleep(0)
        assert queue.waiting == 2
        with pytest.raises(schemes.LoginQueueFull, match="one address"):
            await queue.verify(stored, b"x", ATTACKER)
        with pytest.raises(StoreUnavailable, match="waiting"):
            await queue.verify(stored, b"x", SUBSCRIBER)
        # A waiter that goes away (its client hung up) gives its place back.
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        assert queue.waiting == 1
        third = asyncio.create_task(queue.verify(stored, b"right", ATTACKER))
        await asyncio.sleep(0)
        gate.open.set()
        assert await asyncio.gather(first, third, *running) == [True, True] + [False] * threads
        assert queue.waiting == 0
        assert await queue.verify(stored, b"right", ATTACKER) is True

    asyncio.run(scenario())


def test_a_full_queue_is_a_temporary_failure_to_the_exchange(
    active_backend: ModuleType, gate: _Gate, tmp_path: Path
) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text(f"ma10001a:{_slow_stored(active_backend)}:::\n")
    authenticator = Authenticator(PasswdFileStore(passwd, DOMAIN), login_queue_per_address=1)

    async def scenario() -> Failure | Success:
        held = asyncio.create_task(authenticator.check_password("ma10001a", b"x", client=ATTACKER))
        await gate.wait_for_entered(1)
        sasl = SaslServer("PLAIN", authenticator, "ma1.test", client=ATTACKER)
        outcome = await sasl.start(base64.b64encode(b"\0ma10001a\0right"))
        gate.open.set()
        assert await held is None
        assert isinstance(outcome, Failure | Success)
        return outcome

    assert asyncio.run(scenario()) == Failure(FailureReason.UNAVAILABLE, "ma10001a")


def test_queue_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        schemes.SlowHashQueue(size=0)
    with pytest.raises(ValueError, match="at least 1"):
        schemes.SlowHashQueue(per_client=0)
