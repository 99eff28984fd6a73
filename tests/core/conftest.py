"""Fixtures of the core suite: the vector files (both backends at once: ``both_backends``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def load_vectors(name: str) -> Any:
    """The parsed JSON vector file ``tests/vectors/<name>.json``."""
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def vectors() -> Callable[[str], Any]:
    return load_vectors
