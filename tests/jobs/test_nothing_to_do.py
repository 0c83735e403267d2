"""A night with nothing to do decides so without starting Ray (through the real CLI).

The first night captions two toy videos on a local Ray; the second finds both done. Ray is
pointed at a temp dir of the test's own (`RAY_TMPDIR`), so whether the second night started a
Ray is whether it created anything there.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.jobs.cli_process import ROOT, run_clipnote


def _clipnote(*args: str, cwd: Path, ray_tmp: Path) -> subprocess.CompletedProcess:
    return run_clipnote(*args, cwd=cwd, RAY_TMPDIR=str(ray_tmp))


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
