"""The `clipnote` CLI as a user runs it: a fresh interpreter, this checkout's code, no Ray or
AWS settings inherited from the test process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_clipnote(
    *args: str, cwd: Path, columns: int = 120, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_"))}
    base.update(PYTHONPATH=str(ROOT), COLUMNS=str(columns), RAY_USAGE_STATS_ENABLED="0")
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli", *args],
        cwd=cwd, env=base, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
