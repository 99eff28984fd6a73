"""Nothing outside ``seikyou_auth._pure`` imports it, except the backend choice in ``__init__``.

The twin is a backend like the extension: the public layer reaches both through
``seikyou_auth``'s names, so validation and verification run on the same backend.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import seikyou_auth

PACKAGE = Path(seikyou_auth.__file__).resolve().parent
TWIN = "seikyou_auth._pure"
# The one place that may name the twin: where the backend is chosen.
BACKEND_CHOICE = PACKAGE / "__init__.py"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool) -> set[str]:
    """Every module ``source`` (the text of ``module``) imports: import statements (relative
    ones resolved), ``from X import name`` also as ``X.name`` (it may be a submodule), and
    ``import_module("...")`` with a literal name."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            anchor = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*anchor, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and _calls_import_module(node):
            found.add(node.args[0].value)  # type: ignore[attr-defined]
    return found


def _calls_import_module(call: ast.Call) -> bool:
    name = getattr(call.func, "attr", getattr(call.func, "id", None))
    return (
        name == "import_module"
        and bool(call.args)
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    )


def imports_of(path: Path) -> set[str]:
    return imported_modules(
        path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py"
    )


def imports_twin(modules: set[str]) -> set[str]:
    return {name for name in modules if name == TWIN or name.startswith(TWIN + ".")}


def test_no_module_outside_the_twin_imports_it() -> None:
    assert _offenders() == {}


def _offenders() -> dict[str, list[str]]:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "_pure"):
            continue
        twin_imports = imports_twin(imports_of(path))
        if path == BACKEND_CHOICE:
            # Choosing the twin as the backend: the package, never a private module of it.
            twin_imports.discard(TWIN)
        if twin_imports:
            offenders[str(path.relative_to(PACKAGE))] = sorted(twin_imports)
    return offenders


@pytest.mark.parametrize(
    "source",
    [
        "from seikyou_auth._pure._schemes import parse_scheme",
        "from seikyou_auth import _pure",
        "import seikyou_auth._pure._ct",
        "from .._pure import _sasl",
        "from ..._pure._schemes import TABLE",
        "import importlib\nimportlib.import_module('seikyou_auth._pure')",
    ],
)
def test_the_graph_sees_every_import_form(source: str) -> None:
    """The check above can fail: each way of importing the twin is found (as if written in
    ``seikyou_auth/accounts/passwd_file.py`` or, for three dots, ``server/smtp/replies.py``)."""
    module = "seikyou_auth.server.smtp.replies" if "..." in source else "seikyou_auth.accounts.x"
    assert imports_twin(imported_modules(source, module, is_package=False)), source


def test_other_imports_are_not_the_twin() -> None:
    source = "import seikyou_auth\nfrom seikyou_auth import schemes, _pure_like\nfrom . import y"
    modules = imported_modules(source, "seikyou_auth.accounts.x", is_package=False)
    assert "seikyou_auth.accounts.y" in modules
    assert imports_twin(modules) == set()
