"""systemd's readiness protocol (``Type=notify``): datagrams to ``$NOTIFY_SOCKET``.

The protocol is a few ``KEY=value`` lines in one datagram on an AF_UNIX socket whose
path is in the environment (``@`` at its start names an abstract socket), so it takes
no library (sd_notify(3)). Outside systemd the variable is unset and every call is a
no-op.

With ``workers > 1`` the main process (the one systemd watches, ``NotifyAccess=main``)
speaks for all: each worker reports on a pipe (``WorkerReports``) when its listeners are
up and when a reload is applied, and the main process says ``READY=1`` once every worker
has.
"""

from __future__ import annotations

import logging
import os
import socket
import time

__all__ = ["WorkerReports", "notify", "ready", "reloading", "stopping"]

log = logging.getLogger("seikyou_auth.server")

READY = b"R"
RELOADED = b"H"


def notify(*fields: str) -> bool:
    """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) as one message; False outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    message = "\n".join(fields).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message)
    except OSError as error:
        # systemd then times the start out itself; the server keeps serving.
        log.warning("cannot notify systemd at %s: %s", address.lstrip("\0"), error.strerror)
        return False
    return True


def ready(status: str) -> None:
    notify("READY=1", f"STATUS={status}")


def reloading() -> None:
    # MONOTONIC_USEC lets systemd tie this reload to the SIGHUP it sent (Type=notify-reload).
    notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}", "STATUS=reloading")


def stopping() -> None:
    notify("STOPPING=1", "STATUS=stopping")


class WorkerReports:
    """A pipe from the workers to the main process: one byte per event.

    Created before forking; a worker keeps the writing end (``report``), the main process
    the reading end (``collect``). Writes of one byte to a pipe are atomic, so reports of
    several workers never mix.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()

    def in_worker(self) -> None:
        os.close(self._read)

    def in_main(self) -> None:
        os.close(self._write)

    def report(self, event: bytes) -> None:
        try:
            os.write(self._write, event)
        except OSError:
            pass  # the main process is gone; nothing is waiting for the report

    def next_event(self) -> bytes:
        """The next worker's report; ``b""`` once every worker has exited."""
        return os.read(self._read, 1)

    def close(self) -> None:
        os.close(self._read)
