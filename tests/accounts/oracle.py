"""Helpers of the accounts suite: Dovecot's doveadm as the oracle, fixtures, the CLI."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DOVEADM = shutil.which("doveadm")


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def require_doveadm() -> str:
    """The doveadm path; skipped only outside CI when Dovecot is not installed."""
    if DOVEADM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("doveadm (dovecot-core) is required in CI")
        pytest.skip("doveadm (dovecot-core) is not installed")
    return DOVEADM


def doveadm_pw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_doveadm(), "pw", *args], capture_output=True, text=True, timeout=60
    )


def doveadm_verifies(stored: str, password: str) -> bool:
    return doveadm_pw("-t", stored, "-p", password).returncode == 0


def rust_backend() -> ModuleType:
    try:
        return importlib.import_module("seikyou_auth._core")
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("Rust extension seikyou_auth._core is not built")


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
