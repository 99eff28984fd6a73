"""Helpers of the accounts suite: Dovecot's doveadm as the oracle, fixtures, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.tools import require_tool

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def require_doveadm() -> str:
    """The doveadm path; the suite's one rule for a missing program (``support.tools``)."""
    return require_tool("doveadm")


def doveadm_pw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_doveadm(), "pw", *args], capture_output=True, text=True, timeout=60
    )


def doveadm_verifies(stored: str, password: str) -> bool:
    return doveadm_pw("-t", stored, "-p", password).returncode == 0


def run_cli(
    *args: str, input: bytes | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """``seikyou-auth ARGS`` as a user runs it, in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "seikyou_auth", *args],
        input=input,
        capture_output=True,
        cwd=cwd,
        timeout=timeout,
    )
