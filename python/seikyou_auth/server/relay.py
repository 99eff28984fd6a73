"""Relaying queued mail to the smarthost: retries with backoff, bounces, lifetime.

One attempt sends a message to ``relay_host``. A ``250`` removes it; recipients refused
with ``4xx`` (or a smarthost that cannot be reached) stay queued, tried again after the
next delay of ``smtp.relay_retry_delays`` (Postfix-like: 5 minutes, doubling, capped at
an hour); recipients refused with ``5xx``, or still undelivered once the message is older
than ``queue.max_lifetime``, are returned to the sender in one RFC 3464 report. The
report is delivered to the sender's maildir when the sender is a local account and
queued for the smarthost otherwise, sent with ``MAIL FROM:<>``; mail from ``<>`` is
never answered with a report (it goes to ``queue/failed``).

Order on disk is what makes a crash harmless: the report is written (fsynced) before the
original is removed or rewritten, and the original is removed only after the smarthost's
``250``. A crash in between sends a report or a message twice, never none.
"""

from __future__ import annotations

import asyncio
import logging
import re
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from seikyou_auth.accounts import AccountStore
from seikyou_auth.errors import StoreUnavailable
from seikyou_auth.logtext import quoted
from seikyou_auth.server import metrics
from seikyou_auth.server.config import Config, relay_address
from seikyou_auth.server.dsn import Failure, delivery_status_notification
from seikyou_auth.storage.maildir_writer import MaildirStore
from seikyou_auth.storage.queue import (
    DeliveryState,
    Envelope,
    MailQueue,
    MessageBusy,
    QueuedMessage,
    UnknownMessage,
)

__all__ = ["NO_RELAY_HOST", "Relay", "RelayTask", "relay_warning"]

log = logging.getLogger("seikyou_auth.queue")

NO_RELAY_HOST = "no relay_host configured"
# RFC 3463: 4.4.7 "delivery time expired"; 5.0.0 a permanent failure the reply did not detail.
EXPIRED_STATUS = "4.4.7"
_ENHANCED_CODE = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class _Reply:
    code: int
    text: str

    @classmethod
    def of(cls, code: int, raw: bytes | str) -> _Reply:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        return cls(code, " ".join(text.split()))

    def __str__(self) -> str:
        return f"{self.code} {self.text}"

    @property
    def status(self) -> str:
        found = _ENHANCED_CODE.match(self.text)
        if found and found.group(1) == str(self.code)[0]:
            return found.group(0)
        return f"{str(self.code)[0]}.0.0"


@dataclass(frozen=True)
class _Outcome:
    """What one SMTP session with the smarthost did to each recipient."""

    refused: dict[str, _Reply]  # 5xx: returned to the sender
    retry: tuple[str, ...]  # still to be tried
    error: str  # why ``retry`` was not delivered ("" when it is empty)


class Relay:
    """Tries queued messages; shared by the server's task and ``queue flush``."""

    def __init__(
        self,
        config: Callable[[], Config],
        queue: MailQueue,
        maildirs: MaildirStore,
        store: Callable[[], AccountStore],
        timeout: float = 60.0,
    ) -> None:
        # Read at each use: a SIGHUP reload replaces the server's config and store.
        self._config = config
        self._store = store
        self.queue = queue
        self.maildirs = maildirs
        self.timeout = timeout

    @property
    def config(self) -> Config:
        return self._config()

    @property
    def store(self) -> AccountStore:
        return self._store()

    @property
    def smarthost(self) -> tuple[str, int] | None:
        return relay_address(self.config.smtp)

    @property
    def delays(self) -> tuple[float, ...]:
        return self.config.smtp.relay_retry_delays

    def is_due(self, message_id: str, now: float) -> float | None:
        """None when due now, else when it is."""
        next_attempt = self.queue.state(message_id).next_attempt
        return None if next_attempt <= now else next_attempt

    async def attempt(self, path: Path) -> str:
        """One attempt at one file: "relayed", "deferred: ...", "bounced", "busy" or "gone"."""
        try:
            with self.queue.claim(path):
                try:
                    queued = await asyncio.to_thread(MailQueue.read, path)
                except (ValueError, KeyError, TypeError) as error:
                    log.error(
                        "unreadable queue file %s: %s; moved to queue/failed", path.name, error
                    )
                    await asyncio.to_thread(self.queue.set_aside_path, path)
                    return "set aside: unreadable"
                outcome = await asyncio.to_thread(self._send, queued)
                return await self._settle(queued, outcome)
        except MessageBusy:
            return "busy"
        except UnknownMessage:
            return "gone"

    async def _settle(self, queued: QueuedMessage, outcome: _Outcome) -> str:
        envelope = queued.envelope
        now = time.time()
        delivered = len(envelope.recipients) - len(outcome.refused) - len(outcome.retry)
        if delivered:
            metrics.MESSAGES.inc("relayed")
            log.info(
                "relayed %s from=%s recipients=%d", queued.id, quoted(envelope.sender), delivered
            )
        failures = [
            Failure(rcpt, reply.status, str(reply), self._remote_mta())
            for rcpt, reply in outcome.refused.items()
        ]
        for failure in failures:
            log.error(
                "relay: smarthost refused %s to=%s: %s",
                queued.id,
                quoted(failure.recipient),
                quoted(failure.diagnostic),
            )
        retry = outcome.retry
        expired = bool(retry) and now - envelope.arrival >= self.config.queue.max_lifetime
        if expired:
            log.error(
                "%s expired after %.0f s in the queue (max_lifetime); last error: %s",
                queued.id,
                now - envelope.arrival,
                quoted(outcome.error),
            )
            failures += [
                Failure(rcpt, EXPIRED_STATUS, f"delivery time expired: {outcome.error}")
                for rcpt in retry
            ]
            retry = ()
        if failures:
            try:
                returned = await self._return_to_sender(queued, failures)
            except StoreUnavailable as error:
                # Nothing returned and nothing removed: the whole message is tried again.
                reason = f"cannot return to sender: account store unavailable ({error})"
                await asyncio.to_thread(self._defer, queued, envelope.recipients, reason)
                metrics.MESSAGES.inc("deferred")
                return f"deferred: {reason}"
            if returned:
                metrics.MESSAGES.inc("bounced")
        if not retry:
            await asyncio.to_thread(self.queue.remove, queued.path)
            return "bounced" if failures else "relayed"
        await asyncio.to_thread(self._defer, queued, retry, outcome.error)
        metrics.MESSAGES.inc("deferred")
        return f"deferred: {outcome.error}"

    def _defer(self, queued: QueuedMessage, retry: tuple[str, ...], error: str) -> None:
        if retry != queued.envelope.recipients:
            self.queue.replace_recipients(queued, retry)
        attempts = self.queue.state(queued.id).attempts + 1
        delay = self.delays[min(attempts - 1, len(self.delays) - 1)]
        self.queue.save_state(queued.id, DeliveryState(attempts, error, time.time() + delay))
        log.warning(
            "relay of %s deferred (attempt %d, next in %.0f s): %s",
            queued.id,
            attempts,
            delay,
            quoted(error),
        )

    def _remote_mta(self) -> str:
        return "" if self.smarthost is None else self.smarthost[0]

    # ------------------------------------------------------------ the SMTP session

    def _send(self, queued: QueuedMessage) -> _Outcome:
        """One SMTP session; blocking, run in a thread."""
        recipients = queued.envelope.recipients
        if self.smarthost is None:
            return _Outcome({}, recipients, NO_RELAY_HOST)
        try:
            refused = self._transaction(queued, self.smarthost)
        except smtplib.SMTPRecipientsRefused as error:
            refused = error.recipients
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
            reply = _Reply.of(error.smtp_code, error.smtp_error)
            if error.smtp_code >= 500:
                return _Outcome(dict.fromkeys(recipients, reply), (), "")
            return _Outcome({}, recipients, str(reply))
        except smtplib.SMTPResponseException as error:
            return _Outcome({}, recipients, str(_Reply.of(error.smtp_code, error.smtp_error)))
        except (OSError, smtplib.SMTPException) as error:
            return _Outcome({}, recipients, f"smarthost {self._remote_mta()}: {error}")
        replies = {rcpt: _Reply.of(code, text) for rcpt, (code, text) in refused.items()}
        permanent = {rcpt: reply for rcpt, reply in replies.items() if reply.code >= 500}
        temporary = [rcpt for rcpt, reply in replies.items() if reply.code < 500]
        last_error = str(replies[temporary[0]]) if temporary else ""
        return _Outcome(permanent, tuple(temporary), last_error)

    def _transaction(
        self, queued: QueuedMessage, smarthost: tuple[str, int]
    ) -> dict[str, tuple[int, bytes]]:
        host, port = smarthost
        envelope = queued.envelope
        # Stored with LF line ends; the wire wants CRLF (smtplib dot-stuffs but leaves bytes as is).
        wire_message = queued.message.replace(b"\n", b"\r\n")
        with smtplib.SMTP(
            host, port, local_hostname=self.config.hostname, timeout=self.timeout
        ) as client:
            client.ehlo_or_helo_if_needed()
            # Declared only to a smarthost that knows it; the bytes go as they are either way.
            eight_bit = envelope.eight_bit and client.has_extn("8bitmime")
            options = ["BODY=8BITMIME"] if eight_bit else []
            # smtplib sends an empty sender as MAIL FROM:<>, as a report needs.
            return client.sendmail(
                envelope.sender, list(envelope.recipients), wire_message, options
            )

    # ------------------------------------------------------------ bounces

    async def _return_to_sender(self, queued: QueuedMessage, failures: list[Failure]) -> bool:
        """The report, durably placed; or the failed copy in ``queue/failed`` when none may go.

        True when a report went out. ``StoreUnavailable`` when a local sender cannot be
        looked up (nothing placed then).
        """
        sender = queued.envelope.sender
        failed = tuple(failure.recipient for failure in failures)
        if not sender:
            log.error("%s from <> undeliverable: no report to <>; kept in queue/failed", queued.id)
            await asyncio.to_thread(self._keep_failed_copy, queued, failed)
            return False
        report = delivery_status_notification(
            reporting_host=self.config.hostname,
            recipient=sender,
            arrival=queued.envelope.arrival,
            failures=failures,
            original=queued.message,
        )
        if not self._is_local(sender):
            path = await asyncio.to_thread(self.queue.enqueue, Envelope("", (sender,)), report)
            metrics.MESSAGES.inc("queued")
            self.queue.changed.set()
            log.info("bounce %s for %s queued as %s", queued.id, quoted(sender), path.name)
            return True
        account = await self.store.lookup(self._local_mailbox(sender))
        if account is None:
            log.error(
                "%s: sender %s is no local account; no report, kept in queue/failed",
                queued.id,
                quoted(sender),
            )
            await asyncio.to_thread(self._keep_failed_copy, queued, failed)
            return False
        await asyncio.to_thread(self.maildirs.deliver, account.name, report)
        log.info("bounce %s delivered to local sender %s", queued.id, quoted(sender))
        return True

    def _keep_failed_copy(self, queued: QueuedMessage, recipients: tuple[str, ...]) -> None:
        envelope = queued.envelope
        copy = Envelope(envelope.sender, recipients, envelope.eight_bit, envelope.arrival)
        self.queue.enqueue(copy, queued.message, self.queue.failed)

    def _is_local(self, address: str) -> bool:
        return address.rpartition("@")[2].lower() == self.config.domain

    def _local_mailbox(self, address: str) -> str:
        local_part = address.rpartition("@")[0]
        if local_part.lower() == "postmaster":
            return self.config.smtp.postmaster
        return address


class RelayTask:
    """The server's side: tries every due message, sleeps until the next is due or new mail
    arrives; runs until cancelled."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def run(self) -> None:
        queue = self.relay.queue
        while True:
            queue.changed.clear()
            next_due = await self._pass()
            wait = None if next_due is None else max(0.0, next_due - time.time())
            try:
                await asyncio.wait_for(queue.changed.wait(), wait)
            except TimeoutError:
                pass

    async def _pass(self) -> float | None:
        """Try every due file once; return when the next attempt is due (None: none queued)."""
        next_due: float | None = None
        for path in self.relay.queue.pending():
            due = await asyncio.to_thread(self.relay.is_due, path.name, time.time())
            if due is None:
                try:
                    await self.relay.attempt(path)
                except OSError as error:  # the queue directory itself misbehaves
                    log.error("relay of %s: queue file error: %s", path.name, error)
                    due = time.time() + self.relay.delays[0]
                else:
                    due = await asyncio.to_thread(self.relay.is_due, path.name, time.time())
                    if due is None and path.exists():  # busy elsewhere: look again soon
                        due = time.time() + 1.0
            if due is not None and path.exists():
                next_due = due if next_due is None else min(next_due, due)
        return next_due


def relay_warning(config: Config) -> str | None:
    """The start-up warning when mail for other domains is accepted but cannot leave."""
    if config.smtp.relay_host:
        return None
    if not any(listener.role == "submission" for listener in config.listeners):
        return None
    return (
        "smtp.relay_host is empty but submission listeners accept mail for other domains:"
        " it stays in the queue and returns to the sender after queue.max_lifetime"
        f" ({config.queue.max_lifetime / 86400:g} days)"
    )
