"""A message written to disk as it arrives over SMTP, before it is delivered or queued.

A connection holds one chunk of a message in memory, never the whole message. The spool file
lives in the queue's ``tmp/``; once complete and fsynced it is hard-linked into each
recipient's ``new/`` (``maildir_writer``) or copied behind an envelope into the queue.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
from pathlib import Path
from typing import BinaryIO

from seikyou_auth.storage.durable import FILE_MODE
from seikyou_auth.storage.maildir_layout import host_in_name, sequence_number

__all__ = ["SPOOL_CHUNK", "Spool"]

# How much of a message a connection collects before writing it out.
SPOOL_CHUNK = 256 * 1024


class Spool:
    """A message written to disk as it arrives: LF line ends, as Maildir stores it.

    ``write`` collects up to ``SPOOL_CHUNK`` octets and hands them to a worker thread;
    ``finish`` writes the rest and fsyncs. Until ``discard`` the file is in a ``tmp/``
    directory, where a crash leaves it to ``remove_stale_files``.
    """

    def __init__(self, directory: Path) -> None:
        # The queue's tmp/ may be shared by several nodes too: the machine name keeps them apart.
        host = host_in_name(socket.gethostname())
        name = f"{int(time.time())}.P{os.getpid()}Q{sequence_number()}.{host}.spool"
        self.path = directory / name
        self._descriptor: int | None = os.open(
            self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE
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

    def copy_to(self, out: BinaryIO) -> None:
        """Copy the finished file's content into ``out``."""
        with self.path.open("rb") as message:
            shutil.copyfileobj(message, out)

    def discard(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None
        self.path.unlink(missing_ok=True)
