"""A night with nothing to do decides so without starting Ray (through the real CLI).

The first night captions two toy videos on a local Ray; the second finds both done. Ray is
pointed at a temp dir of the test's own (`RAY_TMPDIR`), so whether the second night started a
Ray is whether it created anything there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _clipnote(*args: str, cwd: Path, ray_tmp: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="120", RAY_TMPDIR=str(ray_tmp))
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.slow  # one real night on a local Ray
def test_a_night_with_nothing_to_do_starts_no_ray(tmp_path: Path) -> None:
    ray_tmp = Path(tempfile.mkdtemp(prefix="cn-", dir="/tmp"))  # short: Ray's unix sockets
    try:
        made = _clipnote("toy-videos", "videos", "--n", "2", "--frames", "24",
                         cwd=tmp_path, ray_tmp=ray_tmp)  # fmt: skip
        assert made.returncode == 0, made.stderr
        night = ("nightly", str(ROOT / "jobs/configs/toy-local.yaml"), "--date", "2026-12-01",
                 "--input", "videos", "--output", "out")  # fmt: skip
        first = _clipnote(*night, cwd=tmp_path, ray_tmp=ray_tmp)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert (ray_tmp / "ray").is_dir()  # the first night did start one here
        shutil.rmtree(ray_tmp / "ray")

        second = _clipnote(*night, cwd=tmp_path, ray_tmp=ray_tmp)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        assert "2 skipped" in second.stdout, second.stdout
        assert not (ray_tmp / "ray").exists(), "a night with nothing to do started a Ray"
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
