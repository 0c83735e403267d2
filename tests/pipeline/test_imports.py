"""torch is imported only where tensors are made: the driver (`pipeline.run`), the module Ray's
tasks and actors run from (`pipeline.ray_data`), the Parquet part writer and the annotator's
module itself import neither torch nor transformers; the annotator imports the model when it
is made, in the actor that hosts it. Each check is a fresh interpreter, as a cold worker is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers")
LIGHT_MODULES = (
    "pipeline.run",
    "pipeline.ray_data",
    "pipeline.output.part_writer",
    "pipeline.annotate.annotator",
    "pipeline.annotate.stage",
    "pipeline.annotate.checkpoint_info",
    "pipeline.annotate.fingerprint",
    "pipeline.decode.video_rows",
    "model",
    "model.checkpoint",
    "model.configuration",
    "model.processing",
)


def heavy_imports(module: str) -> list[str]:
    """The heavy packages a fresh `import module` leaves in `sys.modules`."""
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_module_imports_no_torch(module: str) -> None:
    assert heavy_imports(module) == []


def test_the_check_sees_torch() -> None:
    assert heavy_imports("model.modeling") == ["torch", "transformers"]
