"""Durable Maildir delivery: write in ``tmp/``, fsync, link into ``new/``, fsync ``new/``.

Only after ``deliver`` returns is a message on disk for good, so the SMTP layer
answers ``250`` after it and never before. Files use LF line endings, as Maildir
readers (Dovecot, mutt, the POP3 side) expect; like Dovecot's, the name carries
``,S=<size>,W=<size with CRLF>``.

A message received over SMTP is written as it arrives into a ``Spool`` file (in the
queue's ``tmp/``); once complete and fsynced, it is hard-linked into each recipient's
``new/`` (copied where the maildir is on another file system). Maildir files are never
changed in place, so recipients sharing one inode cannot see each other's actions.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from seikyou_auth.storage.durable import fsync_directory, write_new
from seikyou_auth.storage.maildir_layout import NEW, TMP, crlf_size, ensure_maildir, unique_name
from seikyou_auth.storage.spool import Spool

__all__ = ["MaildirStore"]


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
        ensure_maildir(maildir)
        return maildir

    def deliver(self, account: str, message: bytes) -> Path:
        """Store ``message`` in the account's ``new/``; blocking, call it off the event loop."""
        maildir = self.ensure(account)
        name = unique_name(self.hostname, len(message), crlf_size(message))
        return write_new(maildir / TMP / name, maildir / NEW / name, lambda out: out.write(message))

    def deliver_spooled(self, account: str, spool: Spool) -> Path:
        """Put a complete, fsynced spool file into the account's ``new/``; blocking."""
        maildir = self.ensure(account)
        name = unique_name(self.hostname, spool.size, spool.size + spool.line_ends)
        final = maildir / NEW / name
        try:
            os.link(spool.path, final)
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            return write_new(maildir / TMP / name, final, spool.copy_to)
        fsync_directory(final.parent)
        return final
