"""Durable Maildir delivery: write in ``tmp/``, fsync, link into ``new/``, fsync ``new/``.

Only after ``deliver`` returns is a message on disk for good, so the SMTP layer
answers ``250`` after it and never before. Files use LF line endings, as Maildir
readers (Dovecot, mutt, the POP3 side) expect; like Dovecot's, the name carries
``,S=<size>,W=<size with CRLF>``.

A message received over SMTP is written as it arrives into a ``Spool`` file (in the
queue's ``tmp/``), so a connection holds one chunk of it in memory, never the whole
message; once complete and fsynced, it is hard-linked into each recipient's ``new/``
(copied where the maildir is on another file system). Maildir files are never changed
in place, so recipients sharing one inode cannot see each other's actions.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "STALE_AFTER",
    "MaildirStore",
    "Spool",
    "crlf_size",
    "durable_write",
    "remove_stale_files",
    "unique_name",
]

log = logging.getLogger("seikyou_auth.storage")

# Maildir's rule: a file in tmp/ untouched for 36 hours is a crashed delivery's leftover.
STALE_AFTER = 36 * 3600.0
# How much of a message a connection collects before writing it out.
SPOOL_CHUNK = 256 * 1024

_counter = itertools.count(1)


def _name_safe(hostname: str) -> str:
    # Maildir's escapes for "/" and ":"; "," too, since a UIDL is the name up to its first ",".
    return hostname.replace("/", "\\057").replace(":", "\\072").replace(",", "\\054")


def unique_name(hostname: str, size: int, crlf_size: int | None = None) -> str:
    """A Maildir file name unique to this host, process and call (Dovecot's ``,S=``/``,W=``)."""
    now = time.time()
    seconds = int(now)
    micros = int((now - seconds) * 1_000_000)
    host = _name_safe(hostname)
    sizes = f",S={size}" if crlf_size is None else f",S={size},W={crlf_size}"
    return f"{seconds}.M{micros}P{os.getpid()}Q{next(_counter)}.{host}{sizes}"


def crlf_size(message: bytes) -> int:
    """The size with CRLF line ends, as POP3 sends it (RFC 1939 LIST/STAT)."""
    lf_only = message.replace(b"\r\n", b"\n")
    return len(lf_only) + lf_only.count(b"\n")


def fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def durable_write(tmp_dir: Path, final_dir: Path, name: str, content: bytes) -> Path:
    """Write ``tmp_dir/name``, fsync it, link it as ``final_dir/name``, fsync that directory.

    A crash at any point leaves at most a file in ``tmp_dir``, never a partial
    file in ``final_dir``.
    """
    temporary = tmp_dir / name
    final = final_dir / name
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            view = memoryview(content)
            while view:
                written = os.write(descriptor, view)
                view = view[written:]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.link(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_dir(final_dir)
    return final


class MaildirStore:
    """The maildirs under ``root``: one ``root/NAME/{tmp,new,cur}`` per account.

    ``hostname`` goes into every file name and defaults to the machine's own name, as
    Maildir wants: nodes sharing one tree all answer as the service's one ``hostname``
    setting, and only their machine names tell their deliveries apart.
    """

    def __init__(self, root: Path, hostname: str | None = None) -> None:
        self.root = root
        self.hostname = hostname or socket.gethostname()

    def path(self, account: str) -> Path:
        if not account or "/" in account or account.startswith("."):
            raise ValueError("not a usable maildir name")
        return self.root / account

    def ensure(self, account: str) -> Path:
        """Create the account's maildir (durably) if it does not exist yet."""
        maildir = self.path(account)
        if (maildir / "new").is_dir() and (maildir / "tmp").is_dir():
            return maildir
        for sub in ("tmp", "new", "cur"):
            (maildir / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        fsync_dir(maildir)
        fsync_dir(self.root)
        return maildir

    def deliver(self, account: str, message: bytes) -> Path:
        """Store ``message`` in the account's ``new/``; blocking, call it off the event loop."""
        maildir = self.ensure(account)
        name = unique_name(self.hostname, len(message), crlf_size(message))
        return durable_write(maildir / "tmp", maildir / "new", name, message)

    def deliver_spooled(self, account: str, spool: Spool) -> Path:
        """Put a complete, fsynced spool file into the account's ``new/``; blocking."""
        maildir = self.ensure(account)
        name = unique_name(self.hostname, spool.size, spool.size + spool.line_ends)
        final = maildir / "new" / name
        try:
            os.link(spool.path, final)
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            temporary = maildir / "tmp" / name
            try:
                shutil.copyfile(spool.path, temporary)
                with temporary.open("rb+") as copy:
                    os.fsync(copy.fileno())
                os.link(temporary, final)
            finally:
                temporary.unlink(missing_ok=True)
        fsync_dir(final.parent)
        return final


class Spool:
    """A message written to disk as it arrives: LF line ends, as Maildir stores it.

    ``write`` collects up to ``SPOOL_CHUNK`` octets and hands them to a worker thread;
    ``finish`` writes the rest and fsyncs. Until ``discard`` the file is in a ``tmp/``
    directory, where a crash leaves it to ``remove_stale_files``.
    """

    def __init__(self, directory: Path) -> None:
        # The queue's tmp/ may be shared by several nodes too: the machine name keeps them apart.
        host = _name_safe(socket.gethostname())
        self.path = directory / f"{int(time.time())}.P{os.getpid()}Q{next(_counter)}.{host}.spool"
        self._descriptor: int | None = os.open(
            self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
        )
        self._pending = bytearray()
        self.size = 0
        self.line_ends = 0  # one more octet each when sent with CRLF (POP3 sizes)

    async def write(self, data: bytes) -> None:
        self._pending += data
        self.size += len(data)
        self.line_ends += data.count(b"\n")
        if len(self._pending) >= SPOOL_CHUNK:
            chunk = bytes(self._pending)
            self._pending.clear()
            await asyncio.to_thread(self._write_all, chunk)

    def _write_all(self, data: bytes) -> None:
        assert self._descriptor is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._descriptor, view) :]

    def _finish(self, rest: bytes) -> None:
        self._write_all(rest)
        assert self._descriptor is not None
        os.fsync(self._descriptor)
        os.close(self._descriptor)
        self._descriptor = None

    async def finish(self) -> None:
        """Write what is left and fsync: the file is complete on disk."""
        rest = bytes(self._pending)
        self._pending.clear()
        await asyncio.to_thread(self._finish, rest)

    def discard(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None
        self.path.unlink(missing_ok=True)


def remove_stale_files(directories: Iterable[Path], max_age: float = STALE_AFTER) -> int:
    """Remove files older than ``max_age`` from each ``tmp/`` directory; how many went."""
    cutoff = time.time() - max_age
    removed = 0
    for directory in directories:
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except OSError as error:
                log.warning("cannot remove stale %s: %s", entry.path, error.strerror)
    return removed
