"""Writing a file for good: the one place that fsyncs files and the directories naming them.

A file counts as written only once its data is fsynced *and* the directory entry that names
it is: a crash before that may lose the name even though the data reached the disk. Every
file the package writes goes through ``write_new`` (a file that must not exist yet: Maildir's
tmp → fsync → link → fsync the directory) or ``replace`` (a file changed at once: temporary
→ fsync → rename over it → fsync the directory). Both create files with mode 0600.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["FILE_MODE", "Writer", "fsync_directory", "replace", "write_new"]

FILE_MODE = 0o600

# Writes a file's whole content to the open file it is given.
Writer = Callable[[BinaryIO], object]


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Make the names in ``path`` (created, linked, renamed, removed) durable."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_synced(descriptor: int, write: Writer) -> None:
    with os.fdopen(descriptor, "wb") as out:
        os.fchmod(descriptor, FILE_MODE)  # whatever the umask or a leftover file had
        write(out)
        out.flush()
        os.fsync(out.fileno())


def write_new(temporary: Path, final: Path, write: Writer) -> Path:
    """Create ``final`` whole or not at all; returns it.

    The content goes to ``temporary`` (which must not exist), is fsynced and hard-linked as
    ``final``, whose directory is then fsynced. A crash at any point leaves at most a file at
    ``temporary``, never a partial ``final``. ``FileExistsError`` when either name is taken.
    """
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        _write_synced(descriptor, write)
        os.link(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(final.parent)
    return final


def replace(path: Path, write: Writer, temporary: Path | None = None) -> None:
    """Give ``path`` new content at once: readers see the old file or the new one, never a mix.

    The content goes to ``temporary`` (by default a fresh hidden name beside ``path``; on the
    same file system in any case), is fsynced and renamed over ``path``, whose directory is
    then fsynced. On failure the temporary file is removed and ``path`` is as it was.
    """
    if temporary is None:
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        temporary = Path(name)
    else:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        _write_synced(descriptor, write)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_directory(path.parent)
