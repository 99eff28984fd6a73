"""The outgoing queue (mail for other domains) and the task relaying it to the smarthost.

A queue file is one JSON envelope line followed by the message (LF line
endings); it is written like a Maildir file (``queue/tmp`` → fsync → link into
``queue/new`` → fsync). The relay task deletes a file only after the
smarthost's ``250``; temporary failures are retried with growing delays, and a
permanent refusal moves the file to ``queue/failed`` instead of losing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import smtplib
import time
from dataclasses import dataclass
from pathlib import Path

from seikyou_auth.server.maildir import Spool, durable_write, fsync_dir, unique_name
from seikyou_auth.server.serverlog import quote

__all__ = ["Envelope", "MailQueue", "QueuedMessage", "RelayTask"]

log = logging.getLogger("seikyou_auth.queue")


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipients: tuple[str, ...]
    eight_bit: bool = False


@dataclass(frozen=True)
class QueuedMessage:
    path: Path
    envelope: Envelope
    message: bytes


class MailQueue:
    """``queue/{tmp,new,failed}`` under the data directory."""

    def __init__(self, root: Path, hostname: str) -> None:
        self.root = root
        self.hostname = hostname
        self.tmp = root / "tmp"
        self.new = root / "new"
        self.failed = root / "failed"
        self.changed = asyncio.Event()

    def ensure(self) -> None:
        for directory in (self.tmp, self.new, self.failed):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    @staticmethod
    def _header(envelope: Envelope) -> bytes:
        fields = {
            "from": envelope.sender,
            "to": list(envelope.recipients),
            "8bit": envelope.eight_bit,
        }
        return json.dumps(fields).encode() + b"\n"

    def enqueue(self, envelope: Envelope, message: bytes) -> Path:
        """Durably queue ``message``; blocking, call it off the event loop."""
        self.ensure()
        content = self._header(envelope) + message
        return durable_write(self.tmp, self.new, unique_name(self.hostname, len(content)), content)

    def enqueue_spooled(self, envelope: Envelope, spool: Spool) -> Path:
        """Durably queue a complete spool file, copied in chunks; blocking."""
        self.ensure()
        header = self._header(envelope)
        name = unique_name(self.hostname, len(header) + spool.size)
        temporary = self.tmp / name
        final = self.new / name
        try:
            with temporary.open("xb") as out, spool.path.open("rb") as message:
                out.write(header)
                shutil.copyfileobj(message, out)
                out.flush()
                os.fsync(out.fileno())
            os.link(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
        fsync_dir(self.new)
        return final

    def pending(self) -> list[Path]:
        if not self.new.is_dir():
            return []
        return sorted(path for path in self.new.iterdir() if path.is_file())

    @staticmethod
    def read(path: Path) -> QueuedMessage:
        raw = path.read_bytes()
        header, _, message = raw.partition(b"\n")
        fields = json.loads(header)
        envelope = Envelope(fields["from"], tuple(fields["to"]), bool(fields.get("8bit")))
        return QueuedMessage(path, envelope, message)

    def replace_recipients(self, queued: QueuedMessage, recipients: tuple[str, ...]) -> Path:
        """Requeue with only ``recipients`` left (the rest were delivered or refused for good)."""
        envelope = Envelope(queued.envelope.sender, recipients, queued.envelope.eight_bit)
        new_path = self.enqueue(envelope, queued.message)
        queued.path.unlink()
        return new_path

    def set_aside(self, queued: QueuedMessage) -> None:
        self.set_aside_path(queued.path)

    def set_aside_path(self, path: Path) -> None:
        """Keep a file the relay cannot send for the operator, out of the retry loop."""
        self.ensure()
        path.rename(self.failed / path.name)


class _Permanent(Exception):
    """The smarthost refused the message for good."""


class RelayTask:
    """Sends queued mail to the smarthost; runs until cancelled."""

    def __init__(
        self,
        queue: MailQueue,
        smarthost: tuple[str, int],
        retry_delays: tuple[float, ...],
        timeout: float = 60.0,
    ) -> None:
        self.queue = queue
        self.smarthost = smarthost
        self.retry_delays = retry_delays or (60.0,)
        self.timeout = timeout
        self._attempts: dict[str, tuple[int, float]] = {}

    async def run(self) -> None:
        while True:
            self.queue.changed.clear()
            next_due = await self._pass()
            wait = None if next_due is None else max(0.0, next_due - time.monotonic())
            try:
                await asyncio.wait_for(self.queue.changed.wait(), wait)
            except TimeoutError:
                pass

    async def _pass(self) -> float | None:
        """Try every due file once; return when the next retry is due (None: nothing queued)."""
        next_due: float | None = None
        for path in self.queue.pending():
            attempts, due = self._attempts.get(path.name, (0, 0.0))
            if due > time.monotonic():
                next_due = due if next_due is None else min(next_due, due)
                continue
            try:
                queued = MailQueue.read(path)
            except (OSError, ValueError, KeyError, TypeError) as error:
                log.error("unreadable queue file %s: %s; moved to queue/failed", path.name, error)
                with contextlib.suppress(OSError):
                    self.queue.set_aside_path(path)
                continue
            try:
                left: Path | None = await asyncio.to_thread(self._attempt, queued)
            except OSError as error:  # the queue directory itself misbehaves: try again later
                log.error("relay of %s: queue file error: %s", path.name, error)
                left = path
            if left is None:
                self._attempts.pop(path.name, None)
                continue
            delay = self.retry_delays[min(attempts, len(self.retry_delays) - 1)]
            due = time.monotonic() + delay
            self._attempts[left.name] = (attempts + 1, due)
            next_due = due if next_due is None else min(next_due, due)
        return next_due

    def _attempt(self, queued: QueuedMessage) -> Path | None:
        """One delivery attempt; the path still queued for a retry, or None when done."""
        envelope = queued.envelope
        try:
            refused = self._send(queued)
        except _Permanent as error:
            log.error(
                "relay refused %s permanently: %s; kept in queue/failed", queued.path.name, error
            )
            self.queue.set_aside(queued)
            return None
        except (OSError, smtplib.SMTPException) as error:
            log.warning("relay of %s deferred: %s", queued.path.name, error)
            return queued.path
        retry = tuple(rcpt for rcpt, (code, _) in refused.items() if 400 <= code < 500)
        for rcpt, (code, text) in refused.items():
            if code >= 500:
                log.error("relay: smarthost refused to=%s: %d %r", quote(rcpt), code, text)
        log.info(
            "relayed %s from=%s recipients=%d",
            queued.path.name,
            quote(envelope.sender),
            len(envelope.recipients) - len(refused),
        )
        if retry:
            return self.queue.replace_recipients(queued, retry)
        queued.path.unlink()
        return None

    def _send(self, queued: QueuedMessage) -> dict[str, tuple[int, bytes]]:
        host, port = self.smarthost
        envelope = queued.envelope
        # Stored with LF line ends; the wire wants CRLF (smtplib dot-stuffs but leaves bytes as is).
        wire_message = queued.message.replace(b"\n", b"\r\n")
        with smtplib.SMTP(
            host, port, local_hostname=self.queue.hostname, timeout=self.timeout
        ) as client:
            client.ehlo_or_helo_if_needed()
            # Declared only to a smarthost that knows it; the bytes go as they are either way.
            eight_bit = envelope.eight_bit and client.has_extn("8bitmime")
            options = ["BODY=8BITMIME"] if eight_bit else []
            try:
                refused = client.sendmail(
                    envelope.sender, list(envelope.recipients), wire_message, options
                )
            except smtplib.SMTPRecipientsRefused as error:
                refused = error.recipients
                if all(code >= 500 for code, _ in refused.values()):
                    raise _Permanent(f"all recipients refused: {refused!r}") from None
                return refused
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
                if error.smtp_code >= 500:
                    raise _Permanent(f"{error.smtp_code} {error.smtp_error!r}") from None
                raise
        return refused
