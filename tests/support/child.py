"""Ending a child process the tests started: by its PID, never by name."""

from __future__ import annotations

import os
import signal
import subprocess

STOP_TIMEOUT = 10.0


def end_child(process: subprocess.Popen[bytes] | subprocess.Popen[str], signum: int) -> None:
    """Send ``signum`` (if it still runs) and reap it; SIGKILL when it will not stop in time."""
    if process.poll() is None:
        os.kill(process.pid, signum)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT)
