"""seikyou_auth.BACKEND and the SEIKYOU_AUTH_BACKEND override, each in a fresh interpreter."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

PROBE = """
import importlib, seikyou_auth
print(seikyou_auth.BACKEND)
chosen = importlib.import_module(
    "seikyou_auth._pure" if seikyou_auth.BACKEND == "python" else "seikyou_auth._core"
)
names = ("parse_plain", "cram_md5_verify_prepared", "apop_timestamp", "constant_time_eq")
print(all(getattr(seikyou_auth, name) is getattr(chosen, name) for name in names))
"""


def _rust_built() -> bool:
    return importlib.util.find_spec("seikyou_auth._core") is not None


def _run(choice: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SEIKYOU_AUTH_BACKEND"}
    if choice is not None:
        env["SEIKYOU_AUTH_BACKEND"] = choice
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("choice", ["python", "PYTHON", " python "])
def test_python_override(choice: str) -> None:
    result = _run(choice)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["python", "True"]


def test_rust_override() -> None:
    result = _run("rust")
    if _rust_built():
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["rust", "True"]
    else:
        assert result.returncode != 0
        assert "ImportError" in result.stderr or "ModuleNotFoundError" in result.stderr


@pytest.mark.parametrize("choice", ["java", "pure", "1"])
def test_invalid_override_is_import_error(choice: str) -> None:
    result = _run(choice)
    assert result.returncode != 0
    assert "ImportError: SEIKYOU_AUTH_BACKEND" in result.stderr


@pytest.mark.parametrize("choice", [None, ""])
def test_default_prefers_rust(choice: str | None) -> None:
    result = _run(choice)
    assert result.returncode == 0, result.stderr
    expected = "rust" if _rust_built() else "python"
    assert result.stdout.split() == [expected, "True"]
