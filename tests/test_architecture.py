"""Arrows only point down: aftercal (app shell) -> calendars (channels) -> reminders (engine).

Every module's imports are read with `ast`, including the ones inside functions (the lazy
imports that keep `aftercal plan` light) and `importlib.import_module("...")` calls with a
constant name. Only `aftercal/cli/` may import the command-line libraries.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A package imports only from its own layer and the layers below it.
LAYERS = {"reminders": 0, "calendars": 1, "aftercal": 2}
UI_LIBRARIES = {"typer", "rich", "click"}
UI_PACKAGE = "aftercal.cli"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_in(source: str, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, at any depth.

    `package` is the package the module belongs to, for relative imports.
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{target}" if target else base
            found.append((node.lineno, target))
        elif isinstance(node, ast.Call) and _callee(node.func) in ("import_module", "__import__"):
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((node.lineno, first.value))
    return sorted(found)


def _callee(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def modules() -> list[Path]:
    return sorted(path for package in LAYERS for path in (ROOT / package).rglob("*.py"))


def imports_of(path: Path) -> list[tuple[int, str]]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return imports_in(path.read_text(encoding="utf-8"), package)


def test_the_scanner_sees_lazy_relative_and_dynamic_imports() -> None:
    source = (
        "from . import schedule\n"
        "def later():\n"
        "    from calendars.ics import render_ics\n"
        "    import importlib\n"
        "    return importlib.import_module('aftercal.cli')\n"
    )
    assert [name for _line, name in imports_in(source, "reminders")] == [
        "reminders",
        "calendars.ics",
        "importlib",
        "aftercal.cli",
    ]
    assert imports_in("from ..errors import InputError\n", "reminders.content") == [(1, "reminders.errors")]


def test_every_layer_has_modules() -> None:
    assert {module_name(path).split(".")[0] for path in modules()} == set(LAYERS)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_arrows_only_point_down(path: Path) -> None:
    layer = LAYERS[module_name(path).split(".")[0]]
    upward = [
        f"{path.relative_to(ROOT)}:{line}: imports {target}"
        for line, target in imports_of(path)
        if LAYERS.get(target.split(".")[0], -1) > layer
    ]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_cli_imports_typer_rich_or_click(path: Path) -> None:
    name = module_name(path)
    if name == UI_PACKAGE or name.startswith(UI_PACKAGE + "."):
        return
    ui = [
        f"{path.relative_to(ROOT)}:{line}: imports {target}"
        for line, target in imports_of(path)
        if target.split(".")[0] in UI_LIBRARIES
    ]
    assert not ui, "\n".join(ui)
