"""The connection's clock: one timer per connection that enforces every time bound.

- **Commands.** A line must be complete within ``timeout`` of the moment the server
  started waiting for it, which is after its last reply was handed to the socket.
  Bytes that do not complete a line never move that deadline (slowloris).
- **DATA.** No input at all for ``timeout``, or less than ``min_rate`` octets per
  second on average once ``timeout`` has passed (Postfix's ``smtpd_min_data_rate``).
- **Sending.** While the server waits for the client to take its replies (a large
  RETR to a slow reader), that time is not the client's idleness; but a client that
  takes nothing at all for ``timeout`` is given up on.
- **Working.** Time the server spends itself (hashing, delivering, a login delay)
  never counts.

On expiry the watchdog cancels the session's task and marks itself ``expired``; the
connection layer turns that into its protocol's goodbye line.
"""

from __future__ import annotations

import asyncio

from seikyou_auth.server.lines import LineReader

__all__ = ["IdleWatchdog"]

# How often a send in progress is looked at for progress.
_SEND_POLL = 1.0


class IdleWatchdog:
    def __init__(
        self,
        lines: LineReader,
        writer: asyncio.StreamWriter,
        timeout: float,
        min_rate: int = 0,
        task: asyncio.Task[object] | None = None,
    ) -> None:
        self._lines = lines
        self._writer = writer  # its transport changes with STARTTLS: looked up each time
        self._timeout = timeout
        self._min_rate = min_rate
        self._loop = asyncio.get_running_loop()
        self._task = task or asyncio.current_task()
        self.expired = False
        self.sending = False
        self._unsent = 0
        self._send_progress = self._loop.time()
        self._handle = self._loop.call_at(self._loop.time() + timeout, self._check)

    def start_sending(self) -> None:
        self.sending = True
        self._unsent = 0
        self._send_progress = self._loop.time()

    def stop_sending(self) -> None:
        self.sending = False

    def _input_deadline(self) -> float:
        lines = self._lines
        if lines.data_since is not None:
            deadline = lines.last_input + self._timeout
            if self._min_rate:
                allowed = self._timeout + lines.data_received / self._min_rate
                deadline = min(deadline, lines.data_since + allowed)
            return deadline
        since = lines.line_since if lines.line_since is not None else self._loop.time()
        return since + self._timeout

    def _check(self) -> None:
        now = self._loop.time()
        if self._lines.waiting:
            deadline = self._input_deadline()
        elif self.sending:
            unsent = self._writer.transport.get_write_buffer_size()
            if unsent < self._unsent or self._unsent == 0:
                self._send_progress = now
            self._unsent = unsent
            deadline = min(self._send_progress + self._timeout, now + _SEND_POLL)
            if now < self._send_progress + self._timeout:
                self._handle = self._loop.call_at(deadline, self._check)
                return
        else:
            deadline = now + self._timeout
        if now < deadline:
            self._handle = self._loop.call_at(deadline, self._check)
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
