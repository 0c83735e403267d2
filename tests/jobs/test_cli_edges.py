"""Promises at their edges (issue 18), each tried on purpose through the real `clipnote` CLI:
names a user may pick that once broke what readers see. Expected counts are worked out from
the toy videos written here (2 s each, cut into 1 s clips), never from the code under test.

The commands run in this interpreter (`clipnote_here`) and their runs on the session's Ray:
none of these edges is about the process around the command, and a fresh interpreter and Ray
per run cost about 10 s each (tests/jobs/test_cli_local_run.py keeps the real process).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from model.toy.video_io import write_toy_videos
from tests.jobs.cli_process import Ran, clipnote_here
from tests.jobs.test_cli import _clipnote as _clipnote_process
from tests.jobs.test_cli import _write_config
from tests.pipeline.decode.faults import slow_name


def _clipnote(*args: str, cwd: Path) -> Ran:
    return clipnote_here(*args, cwd=cwd)


def _config(tmp_path: Path, videos: Path, output: Path, checkpoint: Path) -> Path:
    return _write_config(
        tmp_path / "run.yaml",
        f"""
        input: {videos}
        output: {output}
        clips: {{length_s: 1.0, stride_s: 1.0}}
        sampling: {{num_frames: 4}}
        model: {{source: {checkpoint}, max_new_tokens: 4, tag_max_new_tokens: 4}}
        resources: {{annotate_actors: 1, gpus_per_actor: 0}}
        """,
    )


def _json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_tmp_and_lease_in_the_output_path_or_run_id_hide_nothing(
    tmp_path, tiny_checkpoint, ray_session
):
    """Case 1: the record filter matched `.tmp` and `/_lease/` anywhere in the whole path, so
    an output under `~/.tmp/` or a run id `exp.tmp` showed 0 clips, and a night redid itself."""
    videos = tmp_path / "videos"
    write_toy_videos(videos, seed=3, n=2)  # two 2 s videos: two 1 s clips each
    output = tmp_path / ".tmp" / "_lease" / "data.tmpl" / "out"
    config = _config(tmp_path, videos, output, tiny_checkpoint)

    first = _clipnote("nightly", str(config), "--date", "2026-01-02", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "listed 2 videos, 0 skipped as done, 2 processed" in first.stdout
    again = _clipnote("nightly", str(config), "--date", "2026-01-02", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "listed 2 videos, 2 skipped as done, 0 processed" in again.stdout

    named = _clipnote("run", str(config), "--set", "run_id=exp.tmp", cwd=tmp_path)
    assert named.returncode == 0, named.stderr[-3000:]

    sql = (
        "select (select count(*) from clips_all) as rows_all, (select count(*) from clips) "
        "as clips, (select string_agg(run_id, ',' order by run_id) from runs) as runs"
    )
    query = _clipnote("query", str(output), sql, "--format", "json", cwd=tmp_path)
    assert query.returncode == 0, query.stderr[-3000:]
    assert _json_lines(query.stdout) == [
        {"rows_all": 8, "clips": 4, "runs": "exp.tmp,nightly-2026-01-02"}
    ]
    stats = _clipnote("stats", str(output), "--json", cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr[-3000:]
    runs = {r["run_id"]: r for r in json.loads(stats.stdout)["runs"]}
    assert set(runs) == {"exp.tmp", "nightly-2026-01-02"}


@pytest.mark.parametrize("run_id", ["..", ".hidden", "a/b", "-x", "x" * 129])
def test_run_ids_outside_the_one_pattern_exit_2_naming_the_field(tmp_path, run_id):
    """A run id is one name inside `_runs/` (ARCHITECTURE.md): `..` once named the parent."""
    config = _write_config(tmp_path / "run.yaml", f"input: {tmp_path}\noutput: {tmp_path}/o\n")
    result = _clipnote_process("run", str(config), "--set", f"run_id={run_id}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "run_id" in result.stdout + result.stderr


@pytest.mark.slow
def test_chunks_close_on_chunk_videos_with_the_default_file_size(
    tmp_path, tiny_checkpoint, ray_session
):
    """Case 2: with `chunk_videos: 2` and the default `rows_per_file` (10,000) a whole night
    became one part, so one chunk at the very end: a crash lost everything, not one chunk."""
    videos = tmp_path / "videos"
    write_toy_videos(videos, seed=4, n=6)  # six 2 s videos, two 1 s clips each
    output = tmp_path / "out"
    config = _config(tmp_path, videos, output, tiny_checkpoint)
    result = _clipnote(
        "run", str(config), "--set", "run_id=chunky", "--set", "commit.chunk_videos=2",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((output / "_runs" / "chunky.json").read_text())
    assert record["rows"] == 12 and record["config"]["output_options"]["rows_per_file"] == 10000
    chunks = sorted((output / "_runs" / "chunky").glob("*/chunk-*.json"))
    per_chunk = [json.loads(c.read_text())["videos"] for c in chunks]
    # every chunk is cut once 2 videos are complete: at least 2 videos each, 6 in all, so two
    # or three chunks, never one
    assert sum(per_chunk) == 6 and len(per_chunk) >= 2, per_chunk
    assert record["chunks"] == len(per_chunk)


@pytest.mark.slow
def test_chunks_close_on_chunk_seconds_with_the_default_file_size(
    tmp_path, tiny_checkpoint, ray_session
):
    """Case 2, on time: with `chunk_seconds: 1`, `chunk_videos: 1000` and the default
    `rows_per_file`, parts were cut on their row count alone, so a slow run wrote one part and
    committed one chunk, at its very end. Here each video decodes 1.5 s after the one before
    it (the test decode hook's `.slow-Ns.` names; one annotate batch per video), so rows come
    seconds apart and a part must close on time, while no new rows arrive."""
    videos = tmp_path / "videos"
    write_toy_videos(videos, seed=4, n=4)  # four 2 s videos, two 1 s clips each
    for i, path in enumerate(sorted(videos.glob("*.mp4"))):
        path.rename(path.with_name(slow_name(path.name, 1.5 * i)))
    output = tmp_path / "out"
    config = _config(tmp_path, videos, output, tiny_checkpoint)
    result = _clipnote(
        "run", str(config), "--set", "run_id=timely", "--set", "commit.chunk_videos=1000",
        "--set", "commit.chunk_seconds=1", "--set", "model.batch_size=2", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((output / "_runs" / "timely.json").read_text())
    assert record["rows"] == 8 and record["config"]["output_options"]["rows_per_file"] == 10000
    chunks = [json.loads(c.read_text()) for c in (output / "_runs" / "timely").glob("*/chunk-*")]
    chunks.sort(key=lambda c: c["seq"])
    per_chunk = [c["videos"] for c in chunks]
    # the first video's rows came about 4.5 s before the last one's: its part closed 1 s
    # after they came, and its chunk was committed then, not with the rest at the end (the
    # order is what counts: how far apart depends on the machine's load)
    assert sum(per_chunk) == 4 and len(per_chunk) >= 2, per_chunk
    assert record["chunks"] == len(per_chunk)
    first = datetime.fromisoformat(chunks[0]["committed_at"])
    assert first < datetime.fromisoformat(record["committed_at"])


TRICKY_MEMBERS = [
    "../../other.mp4",  # normalised with the shard's path, it read `other.mp4` beside the shard
    "a/../b.mp4",  # normalised, it became "object not found"
    "./dot.mp4",
    "dir//double.mp4",
    "with space.mp4",
    "x#y.mp4",
    "caf\udce9.mp4",  # the byte 0xE9: not UTF-8
]


def _tricky_shard(tmp_path: Path) -> Path:
    """A tar whose members have names a path normaliser changes, each a different toy video
    (1 s, 1.5 s, 2 s, ...), and a decoy `other.mp4` (5 s) beside the shard."""
    import tarfile

    made = write_toy_videos(tmp_path / "toys", seed=7, n=1, num_frames=120)
    (made[0][0]).rename(tmp_path / "shards-decoy.mp4")
    shards = tmp_path / "shards"
    shards.mkdir()
    (tmp_path / "shards-decoy.mp4").rename(shards / "other.mp4")
    shard = shards / "s.tar"
    with tarfile.open(shard, "w", format=tarfile.GNU_FORMAT, errors="surrogateescape") as tar:
        for i, name in enumerate(TRICKY_MEMBERS):
            toys = write_toy_videos(tmp_path / f"m{i}", seed=10 + i, n=1, num_frames=24 + 12 * i)
            tar.add(toys[0][0], arcname=name)
    return shard


@pytest.mark.slow
def test_tar_member_names_survive_a_round_trip_through_a_manifest(
    tmp_path, tiny_checkpoint, ray_session
):
    """Case 7: every `video_uri` of the output, fed back through a manifest (as when re-running
    failed rows), names the same bytes: same video id, same duration, never the decoy."""
    shard = _tricky_shard(tmp_path)
    output = tmp_path / "out"
    config = _config(tmp_path, shard, output, tiny_checkpoint)
    first = _clipnote("run", str(config), "--set", "run_id=first", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    manifest = tmp_path / "again.parquet"
    sql = "select distinct video_uri from clips_all where run_id = 'first'"
    listed = _clipnote(
        "query", str(output), sql, "--format", "parquet", "--out", str(manifest), cwd=tmp_path
    )
    assert listed.returncode == 0, listed.stderr[-3000:]
    again = _clipnote(
        "run", str(config), "--input", str(manifest), "--set", "run_id=again", cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr[-3000:]

    import pyarrow.parquet as pq

    from pipeline.output.committed import read_committed

    rows = read_committed(str(output), latest=False).to_pylist()
    seen: dict[str, dict[str, set]] = {}
    for row in rows:
        per_run = seen.setdefault(row["run_id"], {})
        per_run.setdefault(row["video_uri"], set()).add(
            (row["video_id"], row["video_duration_s"], row["status"])
        )
    readable = [n.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                for n in TRICKY_MEMBERS]  # fmt: skip
    assert sorted(seen["first"]) == sorted(f"{shard}#{name}" for name in readable)
    assert seen["again"] == seen["first"]
    durations = {uri: {round(d, 3) for _id, d, _s in v} for uri, v in seen["first"].items()}
    expected = {f"{shard}#{name}": {(24 + 12 * i) / 24} for i, name in enumerate(readable)}
    assert durations == expected
    assert {s for v in seen["again"].values() for _i, _d, s in v} == {"ok"}
    assert pq.read_table(manifest).num_rows == len(TRICKY_MEMBERS)


@pytest.fixture()
def small_disk(tmp_path):
    """A real 64 KiB disk (tmpfs) to fill: mounting needs root, so elsewhere this skips."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_disk_is_one_line_naming_the_path_and_a_rerun_resumes(
    tmp_path, tiny_checkpoint, small_disk, ray_session
):
    """Case 4: with the disk full the user saw "unexpected error: OSError: [Errno 28]": the
    released lease could not be written either, and that error hid the real one; a
    `_lease/*.tmp` was left behind."""
    import subprocess

    videos = tmp_path / "videos"
    write_toy_videos(videos, seed=5, n=6)  # six 2 s videos, two 1 s clips each
    output = small_disk / "out"
    config = _config(tmp_path, videos, output, tiny_checkpoint)
    night = ("nightly", str(config), "--date", "2026-01-03", "--set", "commit.chunk_videos=2")
    # its own process: the lease it cannot release is taken over once that process is gone
    full = _clipnote_process(*night, cwd=tmp_path)
    assert full.returncode == 1, full.stdout[-2000:] + full.stderr[-3000:]
    lines = [line for line in full.stderr.splitlines() if line.startswith("clipnote:")]
    assert len(lines) == 1 and "Traceback" not in full.stderr, full.stderr
    assert "unexpected error" not in lines[0]
    assert str(output) in lines[0] and "No space left on device" in lines[0], lines[0]
    assert "re-run resumes" in lines[0]
    assert sorted(p.name for p in output.rglob("*.tmp")) == []
    committed = sum(
        json.loads(c.read_text())["videos"]
        for c in (output / "_runs" / "nightly-2026-01-03").glob("*/chunk-*.json")
    )
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    again = _clipnote(*night, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"listed 6 videos, {committed} skipped as done, {6 - committed} processed" in (
        again.stdout
    )
    sql = "select count(*) as n, count(distinct video_uri) as videos from clips"
    query = _clipnote("query", str(output), sql, "--format", "json", cwd=tmp_path)
    assert _json_lines(query.stdout) == [{"n": 12, "videos": 6}]


def _sparse_video(path: Path, frames: int, spacing_s: float) -> Path:
    """A real video of `frames` frames shown `spacing_s` apart (Matroska: its millisecond
    timestamps hold a long claim), a few KB whatever the time it claims."""
    import fractions

    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 9, np.uint8), "rgb24")
            frame.pts, frame.time_base = round(i * spacing_s * 24), fractions.Fraction(1, 24)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.mark.slow
def test_clips_are_bounded_by_real_frames_and_a_clip_cap(tmp_path, tiny_checkpoint, ray_session):
    """Case 6: 24 real frames 40 s apart (a claimed 920 s) with 10 s windows became 92 "ok"
    clips, most of them showing a frame from another window; now a window without a frame of
    its own is no clip, and `decode.max_clips` ends a video early with an error row."""
    video = _sparse_video(tmp_path / "videos" / "sparse.mkv", frames=24, spacing_s=40.0)
    output = tmp_path / "out"
    config = _write_config(
        tmp_path / "run.yaml",
        f"""
        input: {video.parent}
        output: {output}
        clips: {{length_s: 10.0}}
        sampling: {{num_frames: 4}}
        model: {{source: {tiny_checkpoint}, max_new_tokens: 4, tag_max_new_tokens: 4}}
        resources: {{annotate_actors: 1, gpus_per_actor: 0}}
        """,
    )
    whole = _clipnote("run", str(config), "--set", "run_id=whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]
    capped = _clipnote(
        "run", str(config), "--set", "run_id=capped", "--set", "decode.max_clips=5", cwd=tmp_path
    )
    assert capped.returncode == 0, capped.stderr[-3000:]
    sql = (
        "select run_id, status, count(*) as n, min(start_s) as first_s, max(start_s) as last_s,"
        " any_value(error) as error from clips_all group by all order by run_id, status"
    )
    query = _clipnote("query", str(output), sql, "--format", "json", cwd=tmp_path)
    assert query.returncode == 0, query.stderr[-3000:]
    reason = "stopped after 5 clips: the video has 23 clips, more than decode.max_clips (5)"
    assert _json_lines(query.stdout) == [
        {"run_id": "capped", "status": "decode_error", "n": 1, "first_s": 0.0, "last_s": 0.0,
         "error": reason},
        {"run_id": "capped", "status": "ok", "n": 5, "first_s": 0.0, "last_s": 160.0,
         "error": None},
        # a clip per frame: frame i at 40 i s opens the 10 s window starting there; the last
        # frame's window (920 s to the end, 1/24 s) is shorter than clips.min_length_s (1 s)
        {"run_id": "whole", "status": "ok", "n": 23, "first_s": 0.0, "last_s": 880.0,
         "error": None},
    ]  # fmt: skip
