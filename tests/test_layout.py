"""The package layout design.md promises: `model/` is usable without the pipeline, and the
pipeline does not depend on the toy world. Checked on the import statements themselves, so a
lazy import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in sorted(_imported_modules(path)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("model", ("pipeline", "jobs")), ("pipeline", ("jobs", "model.toy"))],
)
def test_package_does_not_import(package: str, forbidden: tuple[str, ...]) -> None:
    assert _violations(package, forbidden) == []


def test_checker_sees_imports() -> None:
    """A checker that finds nothing at all would pass vacuously: jobs/ does import both."""
    assert _violations("jobs", ("pipeline",)) and _violations("jobs", ("model",))
