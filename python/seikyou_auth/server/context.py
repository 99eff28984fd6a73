"""What a protocol handler gets for each connection: ``ListenerContext``.

``handle_connection(reader, writer, ctx)`` of SMTP and POP3 receives one of
these per listener; the shared parts (policy, penalties, store, maildirs,
shutdown) are the same objects for every listener of a server.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from seikyou_auth.accounts import AccountStore
from seikyou_auth.sasl import Authenticator
from seikyou_auth.server.config import Config, ListenerConfig
from seikyou_auth.server.policy import FailureDelay, Policy
from seikyou_auth.server.shared.lease import MailboxLeases
from seikyou_auth.storage.maildir_writer import MaildirStore
from seikyou_auth.storage.queue import MailQueue

__all__ = ["ListenerContext", "Shutdown"]


class Shutdown:
    """Graceful stop: idle sessions are cancelled at once, busy ones get a grace period.

    A handler wraps work that must not be interrupted (receiving and storing a
    message) in ``with ctx.shutdown.busy():`` and checks ``stopping`` afterwards
    to say goodbye (SMTP ``421``) instead of reading the next command.
    """

    def __init__(self) -> None:
        self.stopping = False
        self._busy: set[asyncio.Task[object]] = set()

    @contextmanager
    def busy(self) -> Iterator[None]:
        task = asyncio.current_task()
        if task is None:
            yield
            return
        self._busy.add(task)
        try:
            yield
        finally:
            self._busy.discard(task)

    def is_busy(self, task: asyncio.Task[object]) -> bool:
        return task in self._busy


@dataclass(frozen=True)
class ListenerContext:
    config: Config
    listener: ListenerConfig
    ssl_context: ssl.SSLContext
    policy: Policy
    failure_delay: FailureDelay
    store: AccountStore
    authenticator: Authenticator
    maildirs: MaildirStore
    queue: MailQueue
    shutdown: Shutdown
    # The POP3 lock across nodes (node-local only without [redis]).
    mailbox_leases: MailboxLeases

    @property
    def hostname(self) -> str:
        return self.config.hostname
