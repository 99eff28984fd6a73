"""``[log]``: where the server's log goes, at which level, as text or JSON lines.

Applied at start and again on every reload. The new handler is built before the old one
is removed, so a destination that cannot be opened leaves the running log as it was.

- text: ``serverlog.FORMAT``, the line fail2ban and grep read;
- json: one object per line, ``{"time", "level", "logger", "message"}`` in that order;
  ``json.dumps`` escapes quotes, backslashes, controls and non-ASCII, so client text
  (already quoted by ``logtext.quoted`` in the message) cannot end the object or the line;
- file: reopened when logrotate moves it (``WatchedFileHandler``, as Postfix's
  ``postlogd``), so rotation needs no signal;
- syslog: facility ``mail`` on the local socket, as Postfix and Dovecot log.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import time

from seikyou_auth.server.config import ConfigError, LogConfig
from seikyou_auth.server.serverlog import FORMAT, ServerLogFormatter

__all__ = ["JsonLinesFormatter", "configure", "in_charge"]

SYSLOG_FORMAT = "seikyou-auth: %(levelname)s %(name)s: %(message)s"

_installed: logging.Handler | None = None


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry = {
            "time": f"{seconds}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=True)


def _handler(config: LogConfig) -> logging.Handler:
    handler: logging.Handler
    try:
        if config.destination == "file":
            assert config.file is not None  # the config reader requires it
            handler = logging.handlers.WatchedFileHandler(config.file, encoding="utf-8")
        elif config.destination == "syslog":
            handler = logging.handlers.SysLogHandler(
                config.syslog_socket, logging.handlers.SysLogHandler.LOG_MAIL
            )
        else:
            handler = logging.StreamHandler(sys.stderr)
    except OSError as error:
        target = config.file if config.destination == "file" else config.syslog_socket
        raise ConfigError(
            f"cannot log to {config.destination} {target}: {error.strerror or error}"
        ) from None
    if config.format == "json":
        handler.setFormatter(JsonLinesFormatter())
    elif config.destination == "syslog":
        handler.setFormatter(logging.Formatter(SYSLOG_FORMAT))
    else:
        handler.setFormatter(ServerLogFormatter(FORMAT))
    return handler


def configure(config: LogConfig) -> None:
    """Send the root logger to ``config``'s destination; ConfigError leaves the log unchanged."""
    global _installed
    handler = _handler(config)
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
        _installed.close()
    root.addHandler(handler)
    root.setLevel(config.level.upper())
    _installed = handler
    # No format names the thread or process: spare every record looking them up (documented
    # switches of the logging module; the process id costs a system call per record).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def in_charge() -> bool:
    """Whether ``configure`` installed the log (an embedder's own logging is left alone)."""
    return _installed is not None
