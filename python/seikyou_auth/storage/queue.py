"""The outgoing queue: mail for other domains, on disk until the smarthost takes it.

``queue/new/ID`` is one JSON envelope line (sender, recipients, 8-bit flag, arrival
time) followed by the message (LF line endings). It is written like a Maildir file
(``queue/tmp`` → fsync → link into ``queue/new`` → fsync the directory) and changed
only by an atomic rename over it, so a crash leaves either the old or the new file
(both by ``storage.durable``).
``queue/state/ID`` holds the delivery attempts, the last error and when the next
attempt is due, replaced the same way; a message without one has not been tried yet.
``queue/failed/`` keeps what can be neither relayed nor returned, for the operator.

Whoever tries a message (the server's relay task or ``seikyou-auth queue flush``)
holds an exclusive ``flock`` on its file for the attempt, so two processes never send
the same file at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from seikyou_auth.storage.durable import Writer, fsync_directory, replace, write_new
from seikyou_auth.storage.spool import Spool

__all__ = [
    "DeliveryState",
    "Envelope",
    "MailQueue",
    "MessageBusy",
    "QueueEntry",
    "QueuedMessage",
    "UnknownMessage",
]

# The ids this queue gives out: 12 upper-case hex digits, like Postfix's short queue ids.
_ID_LENGTH = 12
_ID_ATTEMPTS = 8
# Names an operator may pass on the command line: no path separators, no hidden files.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._,=-]{0,200}")


class UnknownMessage(LookupError):
    """No queued message has this id."""


class MessageBusy(Exception):
    """Another process holds the message for a delivery attempt right now."""


@dataclass(frozen=True)
class Envelope:
    sender: str  # "" is the null sender <> (bounces)
    recipients: tuple[str, ...]
    eight_bit: bool = False
    # When the message entered the queue (time.time()); 0 means "when it is written".
    arrival: float = 0.0


@dataclass(frozen=True)
class DeliveryState:
    attempts: int = 0
    last_error: str = ""
    next_attempt: float = 0.0  # time.time() at which the next attempt is due


@dataclass(frozen=True)
class QueuedMessage:
    path: Path
    envelope: Envelope
    message: bytes

    @property
    def id(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class QueueEntry:
    """What ``queue list`` shows of a message, read without its body."""

    id: str
    path: Path
    envelope: Envelope
    state: DeliveryState
    size: int


class MailQueue:
    """``queue/{tmp,new,state,failed}`` under the data directory."""

    def __init__(self, root: Path, hostname: str) -> None:
        self.root = root
        self.hostname = hostname
        self.tmp = root / "tmp"
        self.new = root / "new"
        self.state_dir = root / "state"
        self.failed = root / "failed"
        self.changed = asyncio.Event()

    def ensure(self) -> None:
        for directory in (self.tmp, self.new, self.state_dir, self.failed):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    # ------------------------------------------------------------ writing

    @staticmethod
    def _header(envelope: Envelope) -> bytes:
        fields = {
            "from": envelope.sender,
            "to": list(envelope.recipients),
            "8bit": envelope.eight_bit,
            "arrival": envelope.arrival or time.time(),
        }
        return json.dumps(fields).encode() + b"\n"

    def enqueue(self, envelope: Envelope, message: bytes, directory: Path | None = None) -> Path:
        """Durably queue ``message`` (into ``new/`` unless told otherwise); blocking."""
        self.ensure()
        content = self._header(envelope) + message
        return self._place(directory or self.new, lambda out: out.write(content))

    def enqueue_spooled(self, envelope: Envelope, spool: Spool) -> Path:
        """Durably queue a complete spool file, copied in chunks; blocking."""
        self.ensure()
        header = self._header(envelope)

        def write(out: BinaryIO) -> None:
            out.write(header)
            spool.copy_to(out)

        return self._place(self.new, write)

    def _place(self, directory: Path, write: Writer) -> Path:
        """Write a new file under a fresh id in ``tmp/``, fsync, link into ``directory``."""
        for _ in range(_ID_ATTEMPTS):
            name = secrets.token_hex(_ID_LENGTH // 2).upper()
            final = directory / name
            if final.exists():
                continue
            try:
                return write_new(self.tmp / name, final, write)
            except FileExistsError:
                continue
        raise OSError(f"no free queue id in {directory} after {_ID_ATTEMPTS} tries")

    def replace_recipients(self, queued: QueuedMessage, recipients: tuple[str, ...]) -> None:
        """Keep the message under its id with only ``recipients`` left; atomic."""
        envelope = Envelope(
            queued.envelope.sender, recipients, queued.envelope.eight_bit, queued.envelope.arrival
        )
        content = self._header(envelope) + queued.message
        replace(queued.path, lambda out: out.write(content), self.tmp / f"{queued.id}.rewrite")

    def save_state(self, message_id: str, state: DeliveryState) -> None:
        self.ensure()
        fields = {
            "attempts": state.attempts,
            "last_error": state.last_error,
            "next_attempt": state.next_attempt,
        }
        content = json.dumps(fields).encode()
        replace(
            self.state_dir / message_id,
            lambda out: out.write(content),
            self.tmp / f"{message_id}.state",
        )

    def remove(self, path: Path) -> None:
        """The message is done (relayed or returned): its file goes, then its state."""
        path.unlink(missing_ok=True)
        fsync_directory(path.parent)
        (self.state_dir / path.name).unlink(missing_ok=True)

    def set_aside_path(self, path: Path) -> None:
        """Keep a file the relay cannot send for the operator, out of the retry loop."""
        self.ensure()
        path.rename(self.failed / path.name)
        fsync_directory(self.failed)
        (self.state_dir / path.name).unlink(missing_ok=True)

    # ------------------------------------------------------------ reading

    def pending(self) -> list[Path]:
        if not self.new.is_dir():
            return []
        return sorted(path for path in self.new.iterdir() if path.is_file())

    def set_aside(self) -> list[Path]:
        if not self.failed.is_dir():
            return []
        return sorted(path for path in self.failed.iterdir() if path.is_file())

    @staticmethod
    def _envelope(header: bytes, path: Path) -> Envelope:
        fields = json.loads(header)
        sender, recipients = fields["from"], fields["to"]
        if not isinstance(sender, str) or not all(isinstance(r, str) for r in recipients):
            raise ValueError("envelope addresses must be strings")
        # Files queued before arrival times were recorded: the file's own time.
        arrival = float(fields.get("arrival") or path.stat().st_mtime)
        return Envelope(sender, tuple(recipients), bool(fields.get("8bit")), arrival)

    @classmethod
    def read(cls, path: Path) -> QueuedMessage:
        raw = path.read_bytes()
        header, _, message = raw.partition(b"\n")
        return QueuedMessage(path, cls._envelope(header, path), message)

    def state(self, message_id: str) -> DeliveryState:
        try:
            fields = json.loads((self.state_dir / message_id).read_text())
            return DeliveryState(
                int(fields["attempts"]), str(fields["last_error"]), float(fields["next_attempt"])
            )
        except FileNotFoundError:
            return DeliveryState()
        except (OSError, ValueError, KeyError, TypeError):
            return DeliveryState(last_error="unreadable state file (tried again now)")

    def entry(self, path: Path) -> QueueEntry:
        """Envelope and state of one file, its body left unread; ValueError if unreadable."""
        with path.open("rb") as handle:
            header = handle.readline()
            size = os.fstat(handle.fileno()).st_size - len(header)
        try:
            envelope = self._envelope(header, path)
        except (KeyError, TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"unreadable envelope: {error}") from None
        return QueueEntry(path.name, path, envelope, self.state(path.name), size)

    def find(self, message_id: str) -> Path:
        """The file of a queued or set-aside message; ``UnknownMessage`` otherwise."""
        if not _SAFE_ID.fullmatch(message_id):
            raise UnknownMessage(message_id)
        for directory in (self.new, self.failed):
            path = directory / message_id
            if path.is_file():
                return path
        raise UnknownMessage(message_id)

    @contextlib.contextmanager
    def claim(self, path: Path) -> Iterator[None]:
        """Hold ``path`` for one attempt; ``MessageBusy`` if another process has it,
        ``UnknownMessage`` if it was removed meanwhile."""
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise UnknownMessage(path.name) from None
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise MessageBusy(path.name) from None
            # The holder before us may have rewritten (renamed over) or removed it.
            try:
                current = os.stat(path)
            except FileNotFoundError:
                raise UnknownMessage(path.name) from None
            if current.st_ino != os.fstat(descriptor).st_ino:
                raise MessageBusy(path.name)
            yield
        finally:
            os.close(descriptor)
