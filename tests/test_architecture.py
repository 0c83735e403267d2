"""ARCHITECTURE.md stays true: every module of `pipeline/` is placed on its map, and every
module the map names exists (a renamed or removed module fails here until the map follows)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAP = (ROOT / "ARCHITECTURE.md").read_text()


def pipeline_modules() -> set[str]:
    """`room/module.py` (or `module.py` at the top) for every module of `pipeline/`."""
    base = ROOT / "pipeline"
    return {
        str(path.relative_to(base)) for path in base.rglob("*.py") if path.name != "__init__.py"
    }


def named_modules() -> set[str]:
    """Module paths the map names: `room/module.py` in backticks, or a bare `module.py`
    written in a room's paragraph (`**room.**` ... ) or in the folder tree."""
    named = set(re.findall(r"`((?:core|input|clips|decode|annotate|output)/\w+\.py)`", MAP))
    for room, text in re.findall(r"\*\*(\w+)\.\*\*(.*?)(?=\n\n)", MAP, re.S):
        named |= {f"{room}/{name}" for name in re.findall(r"`(\w+\.py)`", text)}
    tree = MAP.split("```", 2)[1]
    named |= {name for name in re.findall(r"^  (\w+\.py)", tree, re.M)}
    return named


def test_every_pipeline_module_is_on_the_map() -> None:
    assert sorted(pipeline_modules() - named_modules()) == []


def test_every_module_on_the_map_exists() -> None:
    assert sorted(named_modules() - pipeline_modules()) == []


def test_the_map_reads_the_rooms_the_layout_test_enforces() -> None:
    """The rooms named in the folder tree are the rooms tests/test_layout.py checks."""
    from tests.test_layout import ROOMS

    tree = MAP.split("```", 2)[1]
    assert set(re.findall(r"^  (\w+)/", tree, re.M)) == set(ROOMS)
