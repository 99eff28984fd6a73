"""The idle timeout: one timer per session instead of one per line read.

While the session waits for the client and nothing has arrived for
``timeout`` seconds, the watchdog cancels the session's task and marks itself
``expired``; the connection handler turns that cancellation into its protocol's
reply (SMTP ``421 4.4.2``, POP3 ``-ERR``).
Time the server spends working (delivery, a login delay) never counts as idle.
"""

from __future__ import annotations

import asyncio

from seikyou_auth.server.lines import LineReader

__all__ = ["IdleWatchdog"]


class IdleWatchdog:
    def __init__(self, lines: LineReader, timeout: float) -> None:
        self._lines = lines
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self.expired = False
        self._handle = self._loop.call_at(lines.last_input + timeout, self._check)

    def _check(self) -> None:
        deadline = self._lines.last_input + self._timeout
        now = self._loop.time()
        if now < deadline or not self._lines.waiting:
            self._handle = self._loop.call_at(max(deadline, now + 0.01), self._check)
            return
        self.expired = True
        if self._task is not None:
            self._task.cancel()

    def claim(self) -> bool:
        """After a CancelledError: True (and the cancellation undone) when it was ours alone."""
        if not self.expired or self._task is None:
            return False
        return self._task.uncancel() == 0

    def stop(self) -> None:
        self._handle.cancel()
