"""The package layout ARCHITECTURE.md promises, checked on the import statements themselves (a
lazy import inside a function counts too; only imports under `if TYPE_CHECKING:` are exempt,
because they never run):

- `model/` is usable without the pipeline, and the pipeline does not depend on the toy world;
- `pipeline/`'s rooms import only the rooms below them, never the top-level modules (the run,
  the Ray adapter, config, preflight, the work plan) that compose them;
- no import cycle inside `model/`, `pipeline/` or `jobs/` (in `model/`, not even under
  `TYPE_CHECKING`);
- only the Ray adapter and the jobs' Ray session and submit modules import Ray;
- no module in `pipeline/` is longer than 400 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("model", "pipeline", "jobs")

ROOMS: dict[str, set[str]] = {
    "core": set(),
    "input": {"core"},
    "clips": {"core"},
    "decode": {"core", "input", "clips"},
    "annotate": {"core", "clips"},
    "output": {"core"},
}
"""Each room of `pipeline/` and the rooms it may import: the order of a video's walk, with
`output` needing only the plain data of `core` (a writer worker imports nothing else)."""

RAY_MODULES = {"pipeline.ray_data", "jobs.ray_session", "jobs.submit"}
MAX_PIPELINE_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST, typing_too: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run (`typing_too`: and those under `TYPE_CHECKING`)."""
    for node in ast.iter_child_nodes(tree):
        if not typing_too and isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for child in node.orelse for n in _import_nodes_of(child, typing_too))
            continue
        yield from _import_nodes_of(node, typing_too)


def _import_nodes_of(node: ast.AST, typing_too: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    yield from _import_nodes(node, typing_too)


def imported_modules(path: Path, typing_too: bool = False) -> set[str]:
    """Absolute names of the modules `path` imports (relative imports resolved; for
    `from package import name`, both the package and `package.name`)."""
    names: set[str] = set()
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in _import_nodes(ast.parse(path.read_text(), str(path)), typing_too):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            prefix = package[: len(package) - node.level + 1]
            base = ".".join([*prefix, base] if base else prefix)
        names.add(base)
        names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in sorted(imported_modules(path)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def import_graph(modules: dict[str, Path], typing_too: bool = False) -> dict[str, set[str]]:
    """Module -> the project modules it imports (a package's `__init__` counts as a module)."""
    return {
        name: {m for m in imported_modules(path, typing_too) if m in modules and m != name}
        for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def room_of(module: str) -> str | None:
    """`pipeline.<room>.x` -> room; a top-level pipeline module -> "" ; else None."""
    parts = module.split(".")
    if parts[0] != "pipeline" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in ROOMS else ""


def room_violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, imports in sorted(graph.items()):
        room = room_of(module)
        if not room:
            continue
        for target in sorted(imports):
            other = room_of(target)
            if other is None or other == room or target == "pipeline":
                continue
            if other not in ROOMS[room]:
                found.append(f"{module} ({room}) imports {target} ({other or 'top'})")
    return found


# -- the checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("model", ("pipeline", "jobs")), ("pipeline", ("jobs", "model.toy"))],
)
def test_package_does_not_import(package: str, forbidden: tuple[str, ...]) -> None:
    assert _violations(package, forbidden) == []


def test_checker_sees_imports() -> None:
    """A checker that finds nothing at all would pass vacuously: jobs/ does import both."""
    assert _violations("jobs", ("pipeline",)) and _violations("jobs", ("model",))


def test_rooms_import_only_the_rooms_below_them() -> None:
    assert room_violations(import_graph(project_modules())) == []


def test_no_import_cycle_in_any_package() -> None:
    assert cycles(import_graph(project_modules())) == []


def test_no_import_cycle_in_model_even_under_type_checking() -> None:
    """`model/` is stricter: generation and tags are written against the `batching.VideoLM`
    protocol, so not even their type hints name the model that uses them."""
    modules = {name: path for name, path in project_modules().items() if name.startswith("model")}
    graph = import_graph(modules, typing_too=True)
    assert graph["model.modeling"] >= {"model.generation", "model.tags"}  # the checker sees
    assert cycles(graph) == []


def test_only_the_ray_adapters_import_ray() -> None:
    found = [
        f"{name} imports {imported}"
        for name, path in sorted(project_modules().items())
        for imported in sorted(imported_modules(path))
        if (imported == "ray" or imported.startswith("ray.")) and name not in RAY_MODULES
    ]
    assert found == []


def test_no_pipeline_module_is_longer_than_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in sorted((ROOT / "pipeline").rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_PIPELINE_LINES
    }
    assert long == {}


# -- the checker itself, on hand-made modules ----------------------------------------------


def _write(tmp: Path, files: dict[str, str]) -> dict[str, Path]:
    modules = {}
    for name, text in files.items():
        path = tmp.joinpath(*name.split(".")).with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        modules[name] = path
    return modules


def _graph_of(
    tmp: Path, files: dict[str, str], monkeypatch, typing_too: bool = False
) -> dict[str, set[str]]:
    monkeypatch.setattr(f"{__name__}.ROOT", tmp)
    return import_graph(_write(tmp, files), typing_too)


def test_a_cycle_through_a_lazy_import_is_found(tmp_path: Path, monkeypatch) -> None:
    graph = _graph_of(
        tmp_path,
        {
            "pkg.a": "from pkg.b import x\n",
            "pkg.b": "def f():\n    from pkg import c\n",
            "pkg.c": "from . import a\n",
            "pkg.d": "import pkg.a\n",
        },
        monkeypatch,
    )
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_an_import_under_type_checking_is_a_cycle_only_when_asked(
    tmp_path: Path, monkeypatch
) -> None:
    files = {
        "pkg.a": "from pkg.b import x\n",
        "pkg.b": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import y\n"),
    }
    assert cycles(_graph_of(tmp_path, files, monkeypatch)) == []
    assert cycles(_graph_of(tmp_path, files, monkeypatch, typing_too=True)) == [["pkg.a", "pkg.b"]]


def test_a_room_importing_upward_is_found() -> None:
    graph = {
        "pipeline.output.commit": {"pipeline.core.records", "pipeline.run"},
        "pipeline.decode.video": {"pipeline.input.fetch", "pipeline.annotate.settings"},
        "pipeline.run": {"pipeline.output.commit"},
    }
    assert room_violations(graph) == [
        "pipeline.decode.video (decode) imports pipeline.annotate.settings (annotate)",
        "pipeline.output.commit (output) imports pipeline.run (top)",
    ]
