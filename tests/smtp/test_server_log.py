"""The serve command's log lines: stamped exactly as logging's own formatter does, and a login
line whose client-supplied user name cannot forge the fields a log reader trusts."""

from __future__ import annotations

import logging
import random
import re

import pytest
from support.smtp_wire import Wire, plain_ir

from seikyou_auth.server.serverlog import FORMAT, ServerLogFormatter


def _record(created: float) -> logging.LogRecord:
    record = logging.LogRecord(
        "seikyou_auth.login", logging.INFO, __file__, 1, "x %s", ("y",), None
    )
    record.created = created
    record.msecs = (created - int(created)) * 1000
    return record


def test_same_lines_as_the_stock_formatter() -> None:
    ours, stock = ServerLogFormatter(FORMAT), logging.Formatter(FORMAT)
    rng = random.Random(4)
    second = 1_800_000_000.0
    # Several records within one second (the cached stamp), then jumps back and forth.
    times = [second + 0.001, second + 0.5, second + 0.999, second + 1.0, second - 0.25]
    times += [rng.uniform(0, 4e9) for _ in range(500)]
    for created in times:
        assert ours.format(_record(created)) == stock.format(_record(created))


def test_an_explicit_date_format_is_honoured() -> None:
    ours, stock = ServerLogFormatter(FORMAT, "%H:%M"), logging.Formatter(FORMAT, "%H:%M")
    assert ours.format(_record(1_800_000_000.25)) == stock.format(_record(1_800_000_000.25))


# What a fail2ban-style filter reads: key=value pairs, a value quoted when it starts with '"'.
_LOGFMT_FIELD = re.compile(r'([a-z]+)=("(?:[^"\\]|\\.)*"|[^\s"]+)')


@pytest.mark.parametrize(
    "authcid",
    [
        "evil client=203.0.113.9 tls=no result=ok",
        'evil" client="203.0.113.9',
        'evil\\" client=203.0.113.9 \u00e9\x7f',
    ],
)
def test_a_forged_client_field_stays_inside_the_quoted_user(
    caplog: pytest.LogCaptureFixture, submission_port: int, authcid: str
) -> None:
    caplog.set_level(logging.INFO, logger="seikyou_auth.login")
    with Wire(submission_port) as wire:
        wire.ehlo()
        assert wire.command(f"AUTH PLAIN {plain_ir(user=authcid)}")[0] == 535
    (line,) = [r.getMessage() for r in caplog.records if r.name == "seikyou_auth.login"]
    assert line.startswith("smtp login result=failed mechanism=PLAIN client=127.0.0.1 tls=no ms=")
    fields = _LOGFMT_FIELD.findall(line.split(" ", 2)[2])
    assert [key for key, _ in fields] == ["result", "mechanism", "client", "tls", "ms", "user"]
    assert dict(fields)["client"] == "127.0.0.1"
    user = dict(fields)["user"]
    assert user[1:-1].encode().decode("unicode_escape") == authcid
    assert line.isascii() and line.isprintable()
