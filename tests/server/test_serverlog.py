"""server/serverlog.py: the serve command's log lines are stamped exactly as logging's own
formatter does. (The login line a client cannot forge: tests/smtp/test_smtp_auth.py.)"""

from __future__ import annotations

import logging
import random

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
