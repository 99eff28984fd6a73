"""``seikyou-auth queue list | show ID | flush | delete ID``: the operator's view of the queue.

These run in their own process, beside a running server or without one. ``flush`` tries
every queued message at once, in this process, with the server's own relay code; the
per-file lock (``MailQueue.claim``) keeps it and the server's relay task from sending one
file twice. Run them as the user the server runs as, so the files they write (a rewritten
queue file, a report in a maildir) belong to that user.
"""

from __future__ import annotations

import asyncio
import time
from typing import TextIO

from seikyou_auth.accounts.configured import close_store, open_store, start_store
from seikyou_auth.server.config import Config
from seikyou_auth.server.relay import Relay
from seikyou_auth.storage.maildir_writer import MaildirStore
from seikyou_auth.storage.queue import MailQueue, MessageBusy, QueueEntry, UnknownMessage

__all__ = [
    "MessageBusy",
    "UnknownMessage",
    "age_text",
    "delete_message",
    "flush_queue",
    "list_queue",
    "show_message",
]

_COLUMNS = ("ID", "AGE", "SENDER", "RECIPIENTS", "ATTEMPTS", "LAST ERROR")


def _queue(config: Config) -> MailQueue:
    return MailQueue(config.queue_dir, config.hostname)


def age_text(seconds: float) -> str:
    """Like Postfix's queue listings: the two largest units, ``3d4h``, ``2h13m``, ``45s``."""
    remaining = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= size or (unit == "s" and not parts):
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return "".join(parts[:2])


def _sender_text(sender: str) -> str:
    return sender or "<>"


def _printable(text: str) -> str:
    """Addresses and errors come from clients and remote servers: one safe line each."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _row(entry: QueueEntry, now: float) -> tuple[str, ...]:
    return (
        entry.id,
        age_text(now - entry.envelope.arrival),
        _printable(_sender_text(entry.envelope.sender)),
        _printable(",".join(entry.envelope.recipients)),
        str(entry.state.attempts),
        _printable(entry.state.last_error) or "-",
    )


def list_queue(config: Config, out: TextIO) -> int:
    """One tab-separated line per queued message, oldest first; how many there were."""
    queue = _queue(config)
    now = time.time()
    rows: list[QueueEntry] = []
    unreadable: list[str] = []
    for path in queue.pending():
        try:
            rows.append(queue.entry(path))
        except (OSError, ValueError):
            unreadable.append(path.name)
    rows.sort(key=lambda entry: entry.envelope.arrival)
    print("\t".join(_COLUMNS), file=out)
    for entry in rows:
        print("\t".join(_row(entry, now)), file=out)
    for name in unreadable:
        print(
            f"{name}\t-\t-\t-\t-\tunreadable (moved to queue/failed at the next attempt)", file=out
        )
    set_aside = queue.set_aside()
    if set_aside:
        print(f"-- {len(set_aside)} message(s) set aside in {queue.failed}", file=out)
    print(f"-- {len(rows) + len(unreadable)} message(s) queued", file=out)
    return len(rows) + len(unreadable)


def show_message(config: Config, message_id: str, out: TextIO) -> None:
    """Envelope and state, then the message as stored. ``UnknownMessage`` for a bad id,
    ``ValueError`` for a file whose envelope cannot be read."""
    queue = _queue(config)
    path = queue.find(message_id)
    entry = queue.entry(path)  # ValueError when its envelope is unreadable
    where = "queued" if path.parent == queue.new else "set aside (queue/failed)"
    fields = [
        ("id", entry.id),
        ("status", where),
        ("arrival", time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(entry.envelope.arrival))),
        ("sender", _printable(_sender_text(entry.envelope.sender))),
        ("recipients", _printable(", ".join(entry.envelope.recipients))),
        ("size", str(entry.size)),
        ("attempts", str(entry.state.attempts)),
        ("last error", _printable(entry.state.last_error) or "-"),
    ]
    if entry.state.next_attempt and path.parent == queue.new:
        due = time.localtime(entry.state.next_attempt)
        fields.append(("next attempt", time.strftime("%Y-%m-%d %H:%M:%S %z", due)))
    for name, value in fields:
        print(f"{name + ':':<14}{value}", file=out)
    print(file=out)
    out.flush()
    message = MailQueue.read(path).message
    out.write(message.decode("utf-8", "replace"))
    out.flush()


def flush_queue(config: Config, out: TextIO) -> int:
    """Try every queued message now; print what became of each; how many are still queued."""
    queue = _queue(config)
    queue.ensure()
    # The server's own store (passwd-file or PostgreSQL): bounces find local senders in it.
    store = open_store(config)
    relay = Relay(lambda: config, queue, MaildirStore(config.mail_dir), lambda: store)

    async def attempt_all() -> list[tuple[str, str]]:
        await start_store(store)
        try:
            return [(path.name, await relay.attempt(path)) for path in queue.pending()]
        finally:
            await close_store(store)

    results = asyncio.run(attempt_all())
    for message_id, result in results:
        print(f"{message_id}\t{_printable(result)}", file=out)
    left = len(queue.pending())
    print(f"-- {len(results)} message(s) tried, {left} still queued", file=out)
    return left


def delete_message(config: Config, message_id: str) -> str:
    """Remove a queued or set-aside message; ``UnknownMessage``/``MessageBusy`` otherwise."""
    queue = _queue(config)
    path = queue.find(message_id)
    with queue.claim(path):
        queue.remove(path)
    return "set-aside" if path.parent == queue.failed else "queued"
