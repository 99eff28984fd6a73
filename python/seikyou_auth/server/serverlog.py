"""Where ``seikyou-auth serve`` sends its log, and the cheap way it stamps each line.

Every login logs a line (``policy.log_login_attempt``), so the per-line cost of the
logging module is part of the cost of a login. The stock formatter converts and
formats the date and time from scratch for each record; this one does that once per
second and only appends the milliseconds, with the same output.
"""

from __future__ import annotations

import logging
import time
from typing import TextIO

__all__ = ["FORMAT", "ServerLogFormatter", "configure"]

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


def configure(stream: TextIO) -> None:
    """Log INFO and above to ``stream``."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ServerLogFormatter(FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # FORMAT names no thread or process: spare every record looking them up (documented
    # switches of the logging module; the process id costs a system call per record).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
