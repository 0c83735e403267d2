"""A newcomer's local run, through the real `clipnote` process at 80 columns (issue 19):

- the local Ray it starts listens on loopback only (every process: GCS, raylet, workers, the
  dashboard and runtime-env agents), with token authentication on;
- nothing from Ray reaches the terminal without `--verbose` (it printed 4 warning lines,
  one an "E core_worker.cc" line that reads like a failure);
- the run summary, the progress line, `stats` and `query` fit 80 columns, and run ids,
  states, clip ids and paths are never cut (they were "202…", "fin…" and a path with "…");
- a night over the same videos afterwards finds them done and starts no Ray.

One run serves every test here; the sockets are read from /proc while it runs. Ray is pointed
at a temp dir of this module's own (`RAY_TMPDIR`), so whether a later command started a Ray is
whether it created anything there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from model.toy.video_io import write_toy_videos
from tests.jobs.cli_process import ROOT, run_clipnote
from tests.jobs.listening import Listening, descendants, environ, listening

pytestmark = pytest.mark.slow  # a whole pipeline run in a fresh interpreter

COLUMNS = 80


@dataclass
class LocalRun:
    output: Path
    returncode: int
    stdout: str
    stderr: str
    ray_tmp: Path
    videos: Path
    sockets: set[Listening] = field(default_factory=set)
    gcs_env: dict[str, str] = field(default_factory=dict)


def _start_clipnote(*args: str, cwd: Path, ray_tmp: Path) -> subprocess.Popen:
    """`run_clipnote`'s process (same environment), started without waiting for it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_"))}
    env.update(PYTHONPATH=str(ROOT), COLUMNS=str(COLUMNS), RAY_USAGE_STATS_ENABLED="0")
    env.update(RAY_TMPDIR=str(ray_tmp))
    return subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", *args], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Iterator[LocalRun]:
    root = tmp_path_factory.mktemp("local-run")
    videos = root / "videos"
    write_toy_videos(videos, seed=7, n=2)
    output = root / "a-folder-name-long-enough-to-push-paths-past-eighty-columns" / "output"
    ray_tmp = Path(tempfile.mkdtemp(prefix="cn-", dir="/tmp"))  # short: Ray's unix sockets
    proc = _start_clipnote(
        "run", str(ROOT / "jobs/configs/toy-local.yaml"), "--input", str(videos),
        "--output", str(output), cwd=root, ray_tmp=ray_tmp,
    )  # fmt: skip
    run = LocalRun(output, -1, "", "", ray_tmp, videos)
    stop = threading.Event()

    def watch() -> None:  # every listening socket the run's processes ever held
        while not stop.is_set():
            run.sockets |= listening(descendants(proc.pid))
            for sock in run.sockets:
                if sock.name == "gcs_server" and not run.gcs_env:
                    run.gcs_env = environ(sock.pid)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run.stdout, run.stderr = proc.communicate(timeout=600)
    finally:
        stop.set()
        watcher.join()
        if proc.poll() is None:
            proc.kill()
    run.returncode = proc.returncode
    try:
        yield run
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _too_wide(text: str) -> list[str]:
    """Lines wider than the terminal, but for a single word (a path, a URI) printed whole on
    a line of its own, which is how clipnote prints what must not be cut."""
    return [line for line in text.splitlines() if len(line) > COLUMNS and " " in line.strip()]


def test_a_local_run_listens_on_loopback_only_with_token_auth(local_run):
    assert local_run.returncode == 0, local_run.stderr[-3000:]
    names = {sock.name for sock in local_run.sockets}
    assert {"gcs_server", "raylet"} <= names, names  # the watch saw the cluster
    assert any(name.startswith("ray::") for name in names), names  # and a worker or agent
    exposed = sorted(
        (s.name, s.address, s.port) for s in local_run.sockets if not s.loopback
    )  # fmt: skip
    assert exposed == []  # was: gcs, raylet, workers on `*`, the agents on 0.0.0.0 and the NIC
    assert local_run.gcs_env.get("RAY_AUTH_MODE") == "token"


def test_a_local_run_prints_nothing_from_ray(local_run):
    assert local_run.returncode == 0
    lines = local_run.stderr.splitlines()
    assert lines and all(line.startswith("videos ") for line in lines), lines
    assert local_run.stdout.splitlines()[0].startswith("clipnote run ")


def test_the_run_summary_fits_80_columns_and_prints_paths_whole(local_run):
    assert local_run.returncode == 0
    out = local_run.stdout
    assert _too_wide(out) == [] and _too_wide(local_run.stderr) == []
    lines = out.splitlines()
    [record] = list((local_run.output / "_runs").glob("*.json"))
    assert lines[lines.index("output:") + 1] == str(local_run.output)
    assert lines[lines.index("commit record:") + 1] == str(record)
    assert len(str(record)) > COLUMNS  # so the path really had to be printed whole
    assert ("videos", "2") in [tuple(line.split()) for line in lines if line.startswith("  ")]


def test_stats_and_query_fit_80_columns_without_cutting_ids(local_run, tmp_path):
    assert local_run.returncode == 0
    [record] = list((local_run.output / "_runs").glob("*.json"))
    run_id = record.stem
    stats = run_clipnote("stats", str(local_run.output), cwd=tmp_path, columns=COLUMNS)
    assert stats.returncode == 0, stats.stderr
    assert _too_wide(stats.stdout) == []
    assert f"run {run_id}" in stats.stdout.splitlines()  # whole: was "202…"
    assert "finished" in stats.stdout.split()  # was "fin…"
    query = run_clipnote(
        "query", str(local_run.output), "SELECT * FROM clips", cwd=tmp_path, columns=COLUMNS
    )
    assert query.returncode == 0, query.stderr
    assert _too_wide(query.stdout) == []
    words = query.stdout.split()
    videos = sorted(str(p) for p in (local_run.output.parent.parent / "videos").glob("*.mp4"))
    assert sorted(w for w in words if w.endswith(".mp4")) == videos  # every path whole
    assert words.count(run_id) == 2 and words.count("ok") == 2
    assert query.stdout.count("-[ row ") == 2  # one block per row, not 76 one-letter lines


def test_a_night_with_nothing_to_do_starts_no_ray(local_run, tmp_path):
    """The run above did every video; a night over them (the same config, on a copy of the
    output, which the night may add a record to) decides so without starting a Ray."""
    assert local_run.returncode == 0
    assert (local_run.ray_tmp / "ray").is_dir()  # the run did start one there
    shutil.rmtree(local_run.ray_tmp / "ray")
    output = shutil.copytree(local_run.output, tmp_path / "output")
    night = run_clipnote(
        "nightly", str(ROOT / "jobs/configs/toy-local.yaml"), "--date", "2026-12-01",
        "--input", str(local_run.videos), "--output", str(output), cwd=tmp_path,
        RAY_TMPDIR=str(local_run.ray_tmp),
    )  # fmt: skip
    assert night.returncode == 0, night.stdout[-3000:] + night.stderr[-3000:]
    assert "listed 2 videos, 2 skipped as done, 0 processed" in night.stdout, night.stdout
    assert not (local_run.ray_tmp / "ray").exists(), "a night with nothing to do started a Ray"
