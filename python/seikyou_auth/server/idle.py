"""The connection's clock: one timer per connection that enforces every time bound.

- **Commands.** A line must be complete within ``timeout`` of the moment the server
  started waiting for it, which is after its last reply was handed to the socket.
  Bytes that do not complete a line never move that deadline (slowloris).
- **DATA.** No input at all for ``timeout``, or less than ``min_rate`` octets per
  second on average once ``timeout`` has passed (Postfix's ``smtpd_min_data_rate``).
- **Sending.** While replies are on their way (in the transport's buffer or the
  kernel's send queue: a large RETR to a slow reader), that time is not the client's
  idleness, and the command deadline counts from when the client has taken them all;
  but a client that takes nothing at all for ``timeout`` is given up on.
- **Working.** Time the server spends itself (hashing, delivering, a login delay)
  never counts.

On expiry the watchdog cancels the session's task and marks itself ``expired``; the
connection layer turns that into its protocol's goodbye line.
"""

from __future__ import annotations

import asyncio
import fcntl
import struct
import termios

from seikyou_auth.server.lines import LineReader

__all__ = ["IdleWatchdog"]

# How often a send in progress is looked at for progress.
_SEND_POLL = 1.0
# Linux: the octets in a socket's send queue that the peer has not acknowledged yet.
_OUTQ = getattr(termios, "TIOCOUTQ", None)


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
        self.sending = False  # replies were still on their way when it last looked
        self._unsent = 0
        self._send_progress = self._loop.time()
        self._sent_at = 0.0  # when the client last finished taking the replies
        self._handle = self._loop.call_at(self._loop.time() + timeout, self._check)

    def _unsent_octets(self) -> int:
        """Replies not yet taken by the client: in the transport and in the kernel."""
        transport = self._writer.transport
        unsent: int = transport.get_write_buffer_size()
        sock = transport.get_extra_info("socket")
        if _OUTQ is not None and sock is not None:
            try:
                unsent += struct.unpack("i", fcntl.ioctl(sock.fileno(), _OUTQ, b"\0" * 4))[0]
            except OSError:
                pass
        return unsent

    def _input_deadline(self) -> float:
        lines = self._lines
        if lines.data_since is not None:
            deadline = lines.last_input + self._timeout
            if self._min_rate:
                allowed = self._timeout + lines.data_received / self._min_rate
                deadline = min(deadline, lines.data_since + allowed)
            return deadline
        since = lines.line_since if lines.line_since is not None else self._loop.time()
        return max(since, self._sent_at) + self._timeout

    def _check(self) -> None:
        now = self._loop.time()
        unsent = self._unsent_octets()
        if unsent:
            if not self.sending or unsent < self._unsent:
                self._send_progress = now
            self.sending = True
            self._unsent = unsent
            deadline = self._send_progress + self._timeout
            if now < deadline:
                self._handle = self._loop.call_at(min(deadline, now + _SEND_POLL), self._check)
                return
        else:
            if self.sending:
                self._sent_at = now
            self.sending = False
            self._unsent = 0
            deadline = self._input_deadline() if self._lines.waiting else now + self._timeout
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
