"""The CLI starts fast: the driver validates before it imports Ray, and plans a run without
torch or transformers (seconds of imports that only the workers need).

Each check runs in a fresh interpreter: this test process has long since imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "ray")


def _loaded(code: str, *args: str) -> dict:
    """Run `code` in a fresh interpreter; it prints a JSON object last."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_planning_a_run_imports_neither_torch_nor_transformers_nor_ray(tmp_path):
    """What the driver does before the cluster: validate, preflight, the stages' settings."""
    code = f"""
import json, sys
from pipeline.config import build_config
from pipeline.preflight import preflight
from pipeline.run import stage_settings
config = build_config({{"input": sys.argv[1], "output": sys.argv[2], "model": {{"source": "toy"}}}})
preflight(config)
decode, annotate = stage_settings(config, "r")
print(json.dumps({{"size": decode.processor.size, "frames": decode.sampling.num_frames,
                  "loaded": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.mp4").write_bytes(b"not read before the run")
    seen = _loaded(code, str(tmp_path / "in"), str(tmp_path / "out"))
    assert seen == {"size": 64, "frames": 8, "loaded": []}  # the toy checkpoint: 64 px, 8 frames


def test_a_bad_config_is_refused_before_ray_is_imported(tmp_path):
    code = """
import json, sys
from typer.testing import CliRunner
from jobs.cli import app
result = CliRunner().invoke(app, ["run", "--input", sys.argv[1], "--output", sys.argv[2],
                                  "--set", "decode.timeout_s=0"])
print(json.dumps({"code": result.exit_code, "said": "decode.timeout_s" in result.output,
                  "loaded": [m for m in ("torch", "transformers", "ray") if m in sys.modules]}))
"""
    (tmp_path / "in").mkdir()
    seen = _loaded(code, str(tmp_path / "in"), str(tmp_path / "out"))
    assert seen == {"code": 2, "said": True, "loaded": []}
