"""Durable Maildir delivery: write in ``tmp/``, fsync, link into ``new/``, fsync ``new/``.

Only after ``deliver`` returns is a message on disk for good, so the SMTP layer
answers ``250`` after it and never before. Files use LF line endings, as Maildir
readers (Dovecot, mutt, the POP3 side) expect; like Dovecot's, the name carries
``,S=<size>,W=<size with CRLF>``.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from pathlib import Path

__all__ = ["MaildirStore", "crlf_size", "durable_write", "unique_name"]

_counter = itertools.count(1)


def unique_name(hostname: str, size: int, crlf_size: int | None = None) -> str:
    """A Maildir file name unique to this host, process and call (Dovecot's ``,S=``/``,W=``)."""
    now = time.time()
    seconds = int(now)
    micros = int((now - seconds) * 1_000_000)
    host = hostname.replace("/", "\\057").replace(":", "\\072")
    sizes = f",S={size}" if crlf_size is None else f",S={size},W={crlf_size}"
    return f"{seconds}.M{micros}P{os.getpid()}Q{next(_counter)}.{host}{sizes}"


def crlf_size(message: bytes) -> int:
    """The size with CRLF line ends, as POP3 sends it (RFC 1939 LIST/STAT)."""
    lf_only = message.replace(b"\r\n", b"\n")
    return len(lf_only) + lf_only.count(b"\n")


def _fsync_dir(path: Path) -> None:
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
    _fsync_dir(final_dir)
    return final


class MaildirStore:
    """The maildirs under ``root``: one ``root/NAME/{tmp,new,cur}`` per account."""

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
        _fsync_dir(maildir)
        _fsync_dir(self.root)
        return maildir

    def deliver(self, account: str, message: bytes) -> Path:
        """Store ``message`` in the account's ``new/``; blocking, call it off the event loop."""
        maildir = self.ensure(account)
        name = unique_name(self.hostname, len(message), crlf_size(message))
        return durable_write(maildir / "tmp", maildir / "new", name, message)
