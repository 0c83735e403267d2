"""`clipnote toy-videos`: toy-world videos and their truth, written without running anything
(no Ray, no model), through the real CLI process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import av

from tests.jobs.cli_process import run_clipnote


def _clipnote(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_clipnote(*args, cwd=cwd, columns=80)


def test_toy_videos_writes_n_videos_and_their_truth_and_nothing_else(tmp_path: Path) -> None:
    result = _clipnote("toy-videos", "videos", "--n", "3", "--frames", "24", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "videos"
    assert sorted(p.name for p in folder.iterdir()) == [
        "clip_00000.mp4", "clip_00001.mp4", "clip_00002.mp4", "truth.jsonl",
    ]  # fmt: skip
    truth = [json.loads(line) for line in (folder / "truth.jsonl").read_text().splitlines()]
    assert [t["file"] for t in truth] == ["clip_00000.mp4", "clip_00001.mp4", "clip_00002.mp4"]
    assert all(t["caption"] and t["tags"] for t in truth)
    with av.open(str(folder / "clip_00001.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
    assert sorted(p.name for p in tmp_path.iterdir()) == ["videos"]  # no output, no Ray logs
    assert str(folder) in result.stdout.splitlines()  # the folder, whole, on its own line


def test_toy_videos_into_a_place_it_cannot_write_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = _clipnote("toy-videos", str(blocker / "videos"), "--n", "1", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("clipnote: cannot write toy videos to ")
