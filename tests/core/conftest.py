"""Fixtures of the core suite: the vector files and both backends at once."""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def load_vectors(name: str) -> Any:
    """The parsed JSON vector file ``tests/vectors/<name>.json``."""
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def vectors() -> Callable[[str], Any]:
    return load_vectors


@pytest.fixture
def rust_and_python() -> tuple[ModuleType, ModuleType]:
    """Both backends, for differential tests; skipped outside CI while the extension is missing."""
    try:
        rust = importlib.import_module("seikyou_auth._core")
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("Rust extension seikyou_auth._core is not built")
    return rust, importlib.import_module("seikyou_auth._pure")
