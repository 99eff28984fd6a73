"""Reading a maildir, as POP3 does: one locked session, numbered messages, deletions at UPDATE.

Choices (documented in docs/pop3.md, "Choices where the RFCs and the spec are silent"):

* The lock is ``flock`` on ``seikyou-pop3.lock`` in the maildir. It belongs to the open file,
  so it excludes a second session in the same process as well as in another worker process,
  and the kernel drops it when the holder dies, even by ``kill -9``.
  Other nodes sharing the maildir tree are kept out by a second lock the caller adds with
  ``release_with`` (the Redis lease of ``server/shared/lease.py``).
* When a session opens the mailbox, messages in ``new/`` move to ``cur/`` as Dovecot does,
  renamed ``BASE,S=<size>,W=<crlf size>:2,``. The CRLF size in the name saves reading every
  message again for STAT and LIST in later sessions.
* A message's UIDL is its maildir base name (up to the first ``,`` or ``:``), which no rename
  changes, so it is stable across sessions and restarts. A base name that is not a valid
  UIDL (RFC 1939: 1-70 characters 0x21-0x7E) is replaced by its MD5 in hex.
* Messages are numbered by delivery time (the seconds and microseconds that start a maildir
  name), then by name.
* Nothing is removed before ``commit`` (the UPDATE state after QUIT).

Paths are plain strings inside: a login lists a directory on every session, and pathlib's
per-name objects would cost more than the system calls.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from seikyou_auth.storage.durable import FILE_MODE, fsync_directory
from seikyou_auth.storage.maildir_layout import CUR, NEW, ensure_maildir

__all__ = [
    "LOCK_FILE",
    "Mailbox",
    "MailboxLocked",
    "Message",
    "MessageVanished",
    "to_crlf",
]

LOCK_FILE = "seikyou-pop3.lock"
_UIDL_CHARS = re.compile(rb"[\x21-\x7e]{1,70}")
_BASE = re.compile(r"[^,:]*")
_CRLF_SIZE = re.compile(r",W=(\d+)")
_DELIVERY_TIME = re.compile(r"(\d+)(?:\.M(\d+))?")


class MailboxLocked(Exception):
    """Another session holds this mailbox."""


class MessageVanished(Exception):
    """A message's file disappeared from the maildir during the session."""


@dataclass(slots=True)
class Message:
    number: int
    uidl: str
    size: int
    directory: str
    name: str
    deleted: bool = False

    @property
    def path(self) -> Path:
        return Path(self.directory, self.name)

    @property
    def file(self) -> str:
        return os.path.join(self.directory, self.name)


def to_crlf(data: bytes) -> bytes:
    """Every line end as CRLF; a lone CR stays as it is."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _base_name(filename: str) -> str:
    match = _BASE.match(filename)
    return match.group(0) if match else filename


def _uidl_of(base: str) -> str:
    encoded = base.encode("utf-8", "surrogateescape")
    if _UIDL_CHARS.fullmatch(encoded):
        return base
    return hashlib.md5(encoded, usedforsecurity=False).hexdigest()


def _order(name: str) -> tuple[int, int, str]:
    match = _DELIVERY_TIME.match(name)
    if match is None:
        return (0, 0, name)
    return (int(match.group(1)), int(match.group(2) or 0), name)


def _visible_files(directory: str) -> list[str]:
    try:
        return [name for name in os.listdir(directory) if not name.startswith(".")]
    except FileNotFoundError:
        return []


def _read(file: str) -> bytes:
    with open(file, "rb") as handle:
        return handle.read()


class Mailbox:
    """A locked maildir. ``Mailbox.open`` (or ``lock`` then ``load``); ``close`` at the end."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._root = str(path)
        self._cur = os.path.join(self._root, CUR)
        self._new = os.path.join(self._root, NEW)
        self._lock_fd: int | None = lock_fd
        self._also_release: list[Callable[[], None]] = []
        self.messages: list[Message] = []

    @classmethod
    def open(cls, path: Path) -> Mailbox:
        """Lock the maildir (creating it if needed) and list its messages.

        Raises ``MailboxLocked`` when another session, in any process, holds it.
        """
        mailbox = cls.lock(path)
        try:
            mailbox.load()
        except BaseException:
            mailbox.close()
            raise
        return mailbox

    @classmethod
    def lock(cls, path: Path) -> Mailbox:
        """Lock the maildir, creating it (durably) if needed; ``load`` then lists the messages."""
        root = str(path)
        ensure_maildir(root)
        lock_fd = os.open(
            os.path.join(root, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE
        )
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(lock_fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise MailboxLocked(root) from None
            raise
        return cls(path, lock_fd)

    def load(self) -> None:
        """Move new mail to cur/ and number every message.

        Blocking, in time linear in the number of messages: servers call it in a thread.
        """
        new_names = _visible_files(self._new)
        if new_names:
            self._move_to_cur(new_names)
        entries: list[tuple[str, int]] = []
        for name in _visible_files(self._cur):
            size_match = _CRLF_SIZE.search(name)
            if size_match is not None:
                size = int(size_match.group(1))
            else:
                try:
                    size = len(to_crlf(_read(os.path.join(self._cur, name))))
                except (FileNotFoundError, IsADirectoryError):
                    continue
            entries.append((name, size))
        entries.sort(key=lambda entry: _order(entry[0]))
        messages: list[Message] = []
        seen: set[str] = set()
        for number, (name, size) in enumerate(entries, start=1):
            uidl = _uidl_of(_base_name(name))
            if uidl in seen:
                # Two files with one base name: keep UIDLs unique, deterministically.
                encoded = name.encode("utf-8", "surrogateescape")
                uidl = hashlib.md5(encoded, usedforsecurity=False).hexdigest()
            seen.add(uidl)
            messages.append(Message(number, uidl, size, self._cur, name))
        self.messages = messages

    def _move_to_cur(self, names: list[str]) -> None:
        moved = False
        for name in names:
            source = os.path.join(self._new, name)
            try:
                raw = _read(source)
            except (FileNotFoundError, IsADirectoryError):
                continue
            stem = name.split(":", 1)[0]
            if _CRLF_SIZE.search(stem) is None:
                if ",S=" not in stem:
                    stem += f",S={len(raw)}"
                stem += f",W={len(to_crlf(raw))}"
            try:
                os.rename(source, os.path.join(self._cur, f"{stem}:2,"))
            except FileNotFoundError:
                continue
            moved = True
        if moved:
            fsync_directory(self._cur)
            fsync_directory(self._new)

    def release_with(self, release: Callable[[], None]) -> None:
        """Run ``release`` when the lock is released (a lock held beyond this node)."""
        self._also_release.append(release)

    def close(self) -> None:
        """Release the lock; marks not committed are forgotten."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        releases, self._also_release = self._also_release, []
        for release in releases:
            release()

    def live(self) -> list[Message]:
        return [message for message in self.messages if not message.deleted]

    def get(self, number: int) -> Message | None:
        """Message ``number`` (1-based) unless it does not exist or is marked deleted."""
        if 1 <= number <= len(self.messages):
            message = self.messages[number - 1]
            if not message.deleted:
                return message
        return None

    def open_message(self, message: Message) -> BinaryIO:
        """The message's file, open for reading; ``MessageVanished`` when it is gone.

        An open file stays readable even if another session deletes it meanwhile.
        """
        for _ in range(2):
            try:
                return open(message.file, "rb")
            except FileNotFoundError:
                if not self._follow_rename(message):
                    break
        raise MessageVanished(message.uidl)

    def reset(self) -> None:
        for message in self.messages:
            message.deleted = False

    def commit(self) -> int:
        """Remove the messages marked deleted (UPDATE state); returns how many could not be."""
        failures = 0
        removed = False
        for message in self.messages:
            if not message.deleted:
                continue
            try:
                os.unlink(message.file)
                removed = True
            except FileNotFoundError:
                if self._follow_rename(message):
                    try:
                        os.unlink(message.file)
                        removed = True
                    except OSError:
                        failures += 1
            except OSError:
                failures += 1
        if removed:
            fsync_directory(self._cur)
        return failures

    def _follow_rename(self, message: Message) -> bool:
        """Another tool may have changed the file's flags, which renames it within cur/."""
        wanted = _base_name(message.name)
        for name in _visible_files(self._cur):
            if name != message.name and _base_name(name) == wanted:
                message.name = name
                return True
        return False
