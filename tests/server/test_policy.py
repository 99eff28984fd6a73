"""server/policy.py alone, no server: trust, cleartext rules, penalties, bad-command budget,
and the login log line that an admin's tools (fail2ban and the like) parse. (Connection caps
are the connection layer's: test_connection.py; penalties shared through Redis: tests/multinode.)"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time

import pytest

from seikyou_auth.server.policy import (
    BadCommandBudget,
    FailureDelay,
    Policy,
    log_login_attempt,
)

TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32")]


@pytest.fixture
def policy() -> Policy:
    return Policy(TRUSTED)


@pytest.mark.parametrize(
    ("addr", "trusted"),
    [
        ("10.1.2.3", True),
        ("::ffff:10.1.2.3", True),  # a v4 client on a dual-stack socket
        ("2001:db8::1", True),
        ("2001:db8::1%eth0", True),
        ("11.0.0.1", False),
        ("2001:db9::1", False),
        ("not an address", False),
        ("", False),
    ],
)
def test_trusted_networks(policy: Policy, addr: str, trusted: bool) -> None:
    assert policy.is_trusted(addr) is trusted
    assert policy.is_trusted(addr) is trusted  # from the cache, the same answer


@pytest.mark.parametrize(
    ("setting", "addr", "tls", "allowed"),
    [
        ("always", "192.0.2.1", False, True),
        ("never", "10.0.0.1", False, False),
        ("never", "192.0.2.1", True, True),
        ("trusted", "10.0.0.1", False, True),
        ("trusted", "192.0.2.1", False, False),
        ("trusted", "192.0.2.1", True, True),
    ],
)
def test_cleartext_allowed(
    policy: Policy, setting: str, addr: str, tls: bool, allowed: bool
) -> None:
    assert policy.cleartext_allowed(setting, addr, tls) is allowed


def test_failure_delay_grows_per_address_and_resets(policy: Policy) -> None:
    delay = FailureDelay((0.0, 0.01, 0.02), policy)

    async def fail_times(addr: str, count: int) -> None:
        for _ in range(count):
            await delay.failed(addr)

    assert delay.next_delay("192.0.2.1") == 0.0
    assert not delay.is_penalised("192.0.2.1")
    asyncio.run(fail_times("192.0.2.1", 1))
    assert delay.next_delay("192.0.2.1") == 0.01
    assert delay.is_penalised("192.0.2.1")
    asyncio.run(fail_times("192.0.2.1", 3))
    assert delay.next_delay("192.0.2.1") == 0.02  # the last step repeats
    assert not delay.is_penalised("192.0.2.2"), "another address owes nothing"
    delay.reset("192.0.2.1")
    assert delay.next_delay("192.0.2.1") == 0.0
    assert not delay.is_penalised("192.0.2.1")


def test_trusted_addresses_are_never_delayed_or_penalised(policy: Policy) -> None:
    delay = FailureDelay((3600.0,), policy)
    # An hour's penalty, had it been applied, would run far past the timeout.
    asyncio.run(asyncio.wait_for(delay.failed("10.0.0.7"), timeout=30))
    assert delay.next_delay("10.0.0.7") == 0.0
    assert not delay.is_penalised("10.0.0.7")


def test_hold_waits_the_first_step_for_any_stranger_and_never_for_trusted(
    policy: Policy,
) -> None:
    # A temporary failure (full login queue) answered at once would invite a busy loop.
    delay = FailureDelay((3600.0,), policy)

    async def waits(addr: str) -> bool:
        try:
            await asyncio.wait_for(delay.hold(addr), timeout=0.2)
        except TimeoutError:
            return True
        return False

    assert asyncio.run(waits("192.0.2.1"))
    assert not asyncio.run(waits("10.0.0.7"))
    assert not delay.is_penalised("192.0.2.1"), "holding counts no failure"


def test_hold_delays_a_penalised_address_without_counting_a_failure(policy: Policy) -> None:
    delay = FailureDelay((0.0, 3600.0), policy)
    asyncio.run(asyncio.wait_for(delay.hold("192.0.2.1"), timeout=30))  # first step is 0 s
    asyncio.run(delay.failed("192.0.2.1"))

    async def held() -> bool:
        try:
            await asyncio.wait_for(delay.hold("192.0.2.1"), timeout=0.2)
        except TimeoutError:
            return True
        return False

    assert asyncio.run(held()), "a penalised address waits its next penalty"
    assert delay.next_delay("192.0.2.1") == 3600.0, "holding counted no further failure"


def test_failures_are_forgotten_after_a_quiet_hour(policy: Policy) -> None:
    delay = FailureDelay((0.0, 1.0), policy, forget_after=0.05)
    asyncio.run(delay.failed("192.0.2.1"))
    assert delay.is_penalised("192.0.2.1")
    for _ in range(100):  # 2 s at most
        if not delay.is_penalised("192.0.2.1"):
            break
        time.sleep(0.02)
    assert not delay.is_penalised("192.0.2.1")
    assert delay.next_delay("192.0.2.1") == 0.0


def test_per_account_failures_slow_guessing_spread_over_addresses(policy: Policy) -> None:
    # One node, no Redis: the account's count is this node's own. The name in its other form,
    # from an address that never failed, still waits the account's next step (an hour).
    delay = FailureDelay((0.0, 3600.0), policy, per_account=True)
    asyncio.run(delay.failed("192.0.2.1", "ma10001a"))
    with pytest.raises(TimeoutError):
        asyncio.run(asyncio.wait_for(delay.failed("192.0.2.2", "MA10001A@seikyou.ne.jp"), 0.2))
    # another account from a fresh address owes nothing
    asyncio.run(asyncio.wait_for(delay.failed("192.0.2.3", "ma10002b"), timeout=30))


def test_without_per_account_only_the_address_counts(policy: Policy) -> None:
    delay = FailureDelay((0.0, 3600.0), policy)
    asyncio.run(delay.failed("192.0.2.1", "ma10001a"))
    asyncio.run(asyncio.wait_for(delay.failed("192.0.2.2", "ma10001a"), timeout=30))


def test_bad_command_budget() -> None:
    budget = BadCommandBudget(3)
    assert [budget.spend() for _ in range(3)] == [False, False, True]


# ---------------------------------------------------------------- the login log line

# What a logfmt reader (or a fail2ban filter) sees: key=value, a value quoted when it starts
# with '"', where only \" and \\ (and the other escapes) may appear inside.
_LOGFMT_FIELD = re.compile(r'([a-z]+)=("(?:[^"\\]|\\.)*"|[^\s"]+)')


def _logged(caplog: pytest.LogCaptureFixture, *args: object, **keywords: object) -> str:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="seikyou_auth.login"):
        log_login_attempt(*args, **keywords)  # type: ignore[arg-type]
    (record,) = caplog.records
    assert record.name == "seikyou_auth.login"
    return record.getMessage()


def _fields(line: str) -> list[tuple[str, str]]:
    _protocol, login, rest = line.split(" ", 2)
    assert login == "login"
    fields = _LOGFMT_FIELD.findall(rest)
    # Nothing outside the fields: the whole rest of the line is parsed.
    assert " ".join(f"{key}={value}" for key, value in fields) == rest
    return fields


def test_the_contract_example(caplog: pytest.LogCaptureFixture) -> None:
    line = _logged(
        caplog,
        "smtp",
        "evil client=203.0.113.9",
        "PLAIN",
        "127.0.0.5",
        True,
        "failed",
        elapsed_ms=3,
    )
    assert line == (
        "smtp login result=failed mechanism=PLAIN client=127.0.0.5 tls=yes ms=3 "
        'user="evil client=203.0.113.9"'
    )


def test_service_and_no_user(caplog: pytest.LogCaptureFixture) -> None:
    line = _logged(caplog, "auth", None, "LOGIN", "::1", False, "unavailable", service="smtp")
    assert line == (
        'auth login result=unavailable mechanism=LOGIN client=::1 tls=no service="smtp" user=-'
    )
    line = _logged(caplog, "pop3", None, "USER", "192.0.2.1", False, "cleartext-refused")
    assert line.endswith("tls=no user=-"), "no ms= when not measured"


HOSTILE_NAMES = [
    "evil client=203.0.113.9 tls=no result=ok",
    'quote" client=203.0.113.9 result="ok',
    'back\\slash\\" client=203.0.113.9',
    "line\r\nsmtp login result=ok mechanism=PLAIN client=203.0.113.9 tls=yes user=root",
    "nul\x00byte\tand\x7fdel\x1besc",
    "caf\u00e9 \u65e5\u672c \U0001f600 \u202eevil",
    "\udcff",  # an undecodable byte, as surrogateescape gives it
    "",
    "x" * 1000,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_user_name_stays_inside_its_quotes(
    caplog: pytest.LogCaptureFixture, name: str
) -> None:
    line = _logged(caplog, "pop3", name, "USER", "192.0.2.1", False, "failed", elapsed_ms=2015)
    assert line.isascii() and line.isprintable(), line
    fields = _fields(line)
    keys = [key for key, _ in fields]
    assert keys == ["result", "mechanism", "client", "tls", "ms", "user"]
    assert dict(fields)["client"] == "192.0.2.1"
    assert dict(fields)["result"] == "failed"
    user = dict(fields)["user"]
    assert user.startswith('"') and user.endswith('"')
    # Undoing the escapes gives back what the client sent, cut to 255 characters.
    assert user[1:-1].encode().decode("unicode_escape") == name[:255]


def test_odd_server_fields_cannot_break_the_line(caplog: pytest.LogCaptureFixture) -> None:
    # The server's own fields are single words; anything else (a bug upstream, a client-chosen
    # mechanism name relayed by a listener) is quoted rather than trusted.
    line = _logged(caplog, "smtp", "u", "X user=root", "unknown", True, "ok")
    assert dict(_fields(line))["mechanism"] == '"X user=root"'
    assert dict(_fields(line))["user"] == '"u"'


def test_nothing_is_formatted_when_the_logger_is_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="seikyou_auth.login"):
        log_login_attempt("smtp", "u", "PLAIN", "192.0.2.1", True, "ok")
    assert caplog.records == []
