"""The one Maildir layout, for the writer (delivery) and the reader (POP3) alike.

A maildir is ``NAME/{tmp,new,cur}``, created durably by whichever side comes first. A file's
name is unique to the host, process and call, and carries Dovecot's ``,S=<size>`` and
``,W=<size with CRLF>``: files are stored with LF line ends, and POP3 counts octets with CRLF.
A file in ``tmp/`` untouched for 36 hours is a crashed delivery's leftover.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from seikyou_auth.storage.durable import fsync_directory

__all__ = [
    "CUR",
    "NEW",
    "STALE_AFTER",
    "TMP",
    "crlf_size",
    "ensure_maildir",
    "host_in_name",
    "remove_stale_files",
    "sequence_number",
    "unique_name",
]

log = logging.getLogger("seikyou_auth.storage")

TMP, NEW, CUR = "tmp", "new", "cur"
_DIRECTORY_MODE = 0o700

# Maildir's rule: a file in tmp/ untouched for 36 hours is a crashed delivery's leftover.
STALE_AFTER = 36 * 3600.0

_counter = itertools.count(1)


def sequence_number() -> int:
    """The next of this process's numbers that keep its file names apart within a second."""
    return next(_counter)


def ensure_maildir(maildir: str | os.PathLike[str]) -> None:
    """Create ``maildir/{tmp,new,cur}`` where one is missing, durably.

    The maildir and the directory holding it are fsynced, so what is delivered into it
    after this is still found after a crash.
    """
    root = os.fspath(maildir)
    subdirectories = [os.path.join(root, sub) for sub in (TMP, NEW, CUR)]
    if all(os.path.isdir(sub) for sub in subdirectories):
        return
    for sub in subdirectories:
        os.makedirs(sub, mode=_DIRECTORY_MODE, exist_ok=True)
    fsync_directory(root)
    fsync_directory(os.path.dirname(root) or os.curdir)


def host_in_name(hostname: str) -> str:
    """``hostname`` as it stands in a file name: Maildir's escapes for "/" and ":", and "," too,
    since a UIDL is the name up to its first ","."""
    return hostname.replace("/", "\\057").replace(":", "\\072").replace(",", "\\054")


def unique_name(hostname: str, size: int, crlf_size: int | None = None) -> str:
    """A Maildir file name unique to this host, process and call (Dovecot's ``,S=``/``,W=``)."""
    now = time.time()
    seconds = int(now)
    micros = int((now - seconds) * 1_000_000)
    host = host_in_name(hostname)
    sizes = f",S={size}" if crlf_size is None else f",S={size},W={crlf_size}"
    return f"{seconds}.M{micros}P{os.getpid()}Q{sequence_number()}.{host}{sizes}"


def crlf_size(message: bytes) -> int:
    """The size with CRLF line ends, as POP3 sends it (RFC 1939 LIST/STAT)."""
    lf_only = message.replace(b"\r\n", b"\n")
    return len(lf_only) + lf_only.count(b"\n")


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
