"""The cheap way ``seikyou-auth serve`` stamps each log line.

Where the log goes is decided by ``[log]`` (``server/logsetup.py``).

Every login logs a line (``policy.log_login_attempt``), so the per-line cost of the
logging module is part of the cost of a login. The stock formatter converts and
formats the date and time from scratch for each record; this one does that once per
second and only appends the milliseconds, with the same output.
"""

from __future__ import annotations

import logging
import time

__all__ = ["FORMAT", "ServerLogFormatter"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ServerLogFormatter(logging.Formatter):
    _stamped: tuple[int, str] = (-1, "")  # (whole second, its date and time text)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        stamped_second, text = self._stamped
        if second != stamped_second:
            text = time.strftime(self.default_time_format, self.converter(record.created))
            self._stamped = (second, text)
        return f"{text},{int(record.msecs):03d}"
