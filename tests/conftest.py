"""Fixtures shared by the whole suite.

``backend`` runs a test once per backend: the Rust extension and the
pure-Python twin. ``both_backends`` hands a test the two at once, ``(rust, python)``, for
differential tests. Both load the extension through ``rust_backend``, the suite's one loader:
when the extension is not built the test is skipped, unless CI=true, where a missing extension
is a failure.

Under CI=true a run on a machine without every external program the suite drives
(``support.tools.DEBIAN_PACKAGES``) stops before the first test.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest
from support.tools import missing_tools


def rust_backend() -> ModuleType:
    """The Rust extension ``seikyou_auth._core``; skipped when not built, a failure under CI."""
    try:
        return importlib.import_module("seikyou_auth._core")
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("Rust extension seikyou_auth._core is not built")


def pytest_sessionstart(session: pytest.Session) -> None:
    missing = missing_tools() if os.environ.get("CI") == "true" else []
    if missing:
        pytest.exit(
            "CI=true but these programs are missing (.ci/run installs them): " + ", ".join(missing),
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


BACKEND_LOADERS = {
    "rust": rust_backend,
    "python": lambda: importlib.import_module("seikyou_auth._pure"),
}


@pytest.fixture(params=sorted(BACKEND_LOADERS))
def backend(request: pytest.FixtureRequest) -> ModuleType:
    """The module of one backend; both expose the same names as seikyou_auth."""
    return BACKEND_LOADERS[request.param]()


@pytest.fixture
def both_backends() -> tuple[ModuleType, ModuleType]:
    """``(rust, python)``: both backends at once, for tests that compare them."""
    return rust_backend(), BACKEND_LOADERS["python"]()


_CORE_NAMES = importlib.import_module("seikyou_auth._pure").__all__


@pytest.fixture
def active_backend(backend: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Make ``backend`` the one behind ``seikyou_auth`` for this test.

    The layers above the core (sasl, schemes, servers run in-process) call the
    primitives through ``seikyou_auth`` at call time, so this runs them on each backend.
    """
    import seikyou_auth

    for name in _CORE_NAMES:
        monkeypatch.setattr(seikyou_auth, name, getattr(backend, name))
    monkeypatch.setattr(
        seikyou_auth, "BACKEND", "rust" if backend.__name__.endswith("._core") else "python"
    )
    return backend
