"""`model/`'s own imports form no circle, not even counting imports under `TYPE_CHECKING`
(generation and tags are written against the `batching.VideoLM` protocol, not the model)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

MODEL = Path(__file__).resolve().parents[2] / "model"


def module_of(path: Path) -> str:
    parts = ["model", *path.relative_to(MODEL).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module an import statement anywhere in `path` names, relative ones resolved."""
    package = module_of(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                prefix = package[: len(package) - node.level + 1]
                base = ".".join([*prefix, base] if base else prefix)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_no_import_cycle_in_model_even_under_type_checking() -> None:
    modules = {module_of(p): p for p in MODEL.rglob("*.py")}
    graph = {
        name: {m for m in imports_of(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    assert graph["model.modeling"] >= {"model.generation", "model.tags"}  # the checker sees
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as err:
        raise AssertionError(f"import cycle in model/: {err.args[1]}") from None
