"""Fixtures of the accounts suite."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from tests.accounts.oracle import rust_backend


@pytest.fixture
def both_backends() -> tuple[ModuleType, ModuleType]:
    return rust_backend(), importlib.import_module("seikyou_auth._pure")
