"""Shared pieces of the Twisted integration tests: the example servers, run as real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SUBMISSION = EXAMPLES / "twisted_submission.py"
POP3 = EXAMPLES / "twisted_pop3.py"
SERVER_NAME = "mail.seikyou.test"  # as the examples name themselves


@dataclass
class RunningExample:
    port: int
    process: subprocess.Popen[str]
    log: str = ""
    """What the server wrote to stderr (its login log lines), once it has stopped."""


@contextmanager
def run_example(script: Path, *arguments: Path | str) -> Iterator[RunningExample]:
    """Starts an example on a free loopback port; stops it with SIGINT when done.

    It must then exit cleanly, and its log must hold no traceback.
    """
    process = subprocess.Popen(
        [sys.executable, str(script), *map(str, arguments), "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        announcement = process.stdout.readline()
        assert "127.0.0.1:" in announcement, process.communicate(timeout=30)
        running = RunningExample(int(announcement.rsplit(":", 1)[1]), process)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        _, running_log = process.communicate(timeout=30)
    running.log = running_log
    assert process.returncode == 0, running_log
    assert "Traceback" not in running_log, running_log
