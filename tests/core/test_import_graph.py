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


def imported_modules(
    source: str, module: str, is_package: bool, at_run_time: bool = False
) -> set[str]:
    """Every module ``source`` (the text of ``module``) imports: import statements (relative
    ones resolved), ``from X import name`` also as ``X.name`` (it may be a submodule), and
    ``import_module("...")`` with a literal name. ``at_run_time`` leaves out what only
    ``if TYPE_CHECKING:`` imports."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    tree = ast.parse(source)
    if at_run_time:
        tree = _WithoutTypeCheckingBlocks().visit(tree)
    for node in ast.walk(tree):
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


class _WithoutTypeCheckingBlocks(ast.NodeTransformer):
    def visit_If(self, node: ast.If) -> ast.AST | list[ast.stmt]:
        if getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            return node.orelse
        self.generic_visit(node)
        return node


def _calls_import_module(call: ast.Call) -> bool:
    name = getattr(call.func, "attr", getattr(call.func, "id", None))
    return (
        name == "import_module"
        and bool(call.args)
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    )


def imports_of(path: Path, at_run_time: bool = False) -> set[str]:
    return imported_modules(
        path.read_text(encoding="utf-8"),
        module_name(path),
        path.name == "__init__.py",
        at_run_time,
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


# Imports point down only (docs/ARCHITECTURE.md, Layering): what serves the protocols and the
# operator sits on top, and nothing below it reaches up at run time. Annotations may name
# ``server.config.Config``, the settings object a caller hands to an account store.
UPPER_LAYERS = ("seikyou_auth.server", "seikyou_auth.cli", "seikyou_auth.integrations")
LOWER_LAYERS = ("accounts", "storage", "schemes.py", "sasl.py", "errors.py", "logtext.py")


def reaches_up(modules: set[str]) -> set[str]:
    return {
        name
        for name in modules
        if any(name == upper or name.startswith(upper + ".") for upper in UPPER_LAYERS)
    }


def test_the_lower_layers_never_import_the_server_the_cli_or_the_integrations() -> None:
    offenders = {}
    for layer in LOWER_LAYERS:
        root = PACKAGE / layer
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            if upward := reaches_up(imports_of(path, at_run_time=True)):
                offenders[str(path.relative_to(PACKAGE))] = sorted(upward)
    assert offenders == {}


def test_an_upward_import_is_seen_a_type_only_one_is_not() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from seikyou_auth.server.serverlog import quote\n"
        "if TYPE_CHECKING:\n"
        "    from seikyou_auth.server.config import Config\n"
        "def f():\n"
        "    from ..cli import main\n"
    )
    module = "seikyou_auth.accounts.postgresql"
    modules = imported_modules(source, module, is_package=False, at_run_time=True)
    assert "seikyou_auth.server.config" in imported_modules(source, module, is_package=False)
    assert reaches_up(modules) == {
        "seikyou_auth.server.serverlog",
        "seikyou_auth.server.serverlog.quote",
        "seikyou_auth.cli",
        "seikyou_auth.cli.main",
    }
