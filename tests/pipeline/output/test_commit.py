"""Committing a run without Ray: chunk records, the run record, replacement with a grace
period, resumption, and failures that keep what was committed.

Local folders and the moto S3 server on loopback; rows are made here, not by the pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.core.errors import CommitError
from pipeline.core.storage import StorageOptions, filesystem, strip_scheme
from pipeline.output.chunks import ChunkTracker
from pipeline.output.commit import RunCommitter
from pipeline.output.part_writer import write_part
from pipeline.output.reading import read_all, read_latest, snapshot
from pipeline.output.records import RunDetails, SamplingInfo
from tests.pipeline.output.parts import DAY, clip_rows


def _commit_run(root, options, run, videos, *, mode="replace", grace_s=3600.0, minute=0):
    committer = RunCommitter(root, run, f"att{minute}", DAY, options, mode=mode, grace_s=grace_s)
    committer.on_write_start()
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    for uri, clips in videos.items():
        tracker.add(write_part(clip_rows({uri: clips}, run, minute), committer.target))
        if tracker.due():
            committer.commit_chunk(tracker.take())
    committer.on_write_complete(RunDetails(videos=len(videos)))
    return committer


def test_chunks_are_visible_before_the_run_ends_and_a_crash_keeps_them(output):
    root, options = output
    committer = RunCommitter(root, "night", "a1", DAY, options, mode="resume")
    committer.on_write_start()
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(write_part(clip_rows({"v1": 2}, "night"), committer.target))
    committer.commit_chunk(tracker.take())
    write_part(clip_rows({"v2": 1}, "night"), committer.target)  # written, never committed
    committer.lease._stop.set()  # "crash": no run record, lease left behind
    assert sorted(read_latest(root, options)["video_uri"].to_pylist()) == ["v1", "v1"]
    assert [c["seq"] for c in snapshot(root, options).chunks] == [1]


def test_replacing_run_keeps_old_files_for_the_grace_period(output):
    root, options = output
    first = _commit_run(root, options, "r", {"a": 2, "b": 1}, minute=0)
    listed = snapshot(root, options).files  # a reader lists the first attempt's files...
    _commit_run(root, options, "r", {"a": 2}, minute=5)  # ...then a re-run replaces it
    latest = read_latest(root, options)
    assert sorted(latest["video_uri"].to_pylist()) == ["a", "a"]  # b was not re-listed
    assert read_all(root, options).num_rows == 2  # the first attempt is retired
    fs = filesystem(root, options)
    assert all(fs.exists(strip_scheme(f)) for f in listed)  # grace: still readable
    assert set(first.files) == set(listed)
    record = snapshot(root, options).runs["r"]
    assert record["attempts"] == ["att5"] and sorted(record["retired"]) == ["att0"]
    assert sorted(record["retired"]["att0"]["files"]) == sorted(listed)


def test_grace_zero_removes_the_replaced_attempt(output):
    root, options = output
    first = _commit_run(root, options, "r", {"a": 1}, minute=0)
    _commit_run(root, options, "r", {"a": 1}, minute=5, grace_s=0)
    fs = filesystem(root, options)
    fs.invalidate_cache() if hasattr(fs, "invalidate_cache") else None
    assert not any(fs.exists(strip_scheme(f)) for f in first.files)
    assert read_latest(root, options)["caption"].to_pylist() == ["r"]
    record = snapshot(root, options).runs["r"]
    assert record["attempts"] == ["att5"] and record["retired"] == {}


def test_resumed_run_keeps_its_earlier_attempts(output):
    root, options = output
    _commit_run(root, options, "n", {"a": 1}, mode="resume", minute=0)
    _commit_run(root, options, "n", {"b": 2}, mode="resume", minute=5)
    record = snapshot(root, options).runs["n"]
    assert record["attempts"] == ["att0", "att5"] and record["rows"] == 3
    assert record["attempt_counts"] == {"att0": {"ok": 1}, "att5": {"ok": 2}}
    assert sorted(read_latest(root, options)["video_uri"].to_pylist()) == ["a", "b", "b"]


def test_the_run_record_on_disk_has_the_keys_readers_know(tmp_path):
    """The run record's keys and values as every earlier version wrote them: `clipnote query`'s
    `runs` view, `clipnote stats` and outputs written before must keep reading it."""
    root = str(tmp_path / "out")
    committer = RunCommitter(root, "r", "att1", DAY)
    committer.on_write_start()
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(write_part(clip_rows({"a": 2}, "r"), committer.target))
    committer.commit_chunk(tracker.take())
    details = RunDetails(
        config={"run_id": "r"}, mode="all", videos=3, skipped=1, processed=2, seconds=1.5,
        gpus_per_actor=0.0, settings_key="S", model_key="M", sampling=SamplingInfo(4, "uniform"),
    )  # fmt: skip
    uri = committer.on_write_complete(details)
    assert uri == f"{root}/_runs/r.json"
    record = json.loads(Path(uri).read_text())
    assert list(record) == [
        "run_id", "run_date", "committed_at", "attempt", "attempts", "retired", "files",
        "counts", "rows", "attempt_counts", "chunks", "config", "mode", "videos", "skipped",
        "processed", "seconds", "gpus_per_actor", "settings_key", "model_key", "sampling",
    ]  # fmt: skip
    assert record["run_date"] == "2026-01-02" and record["attempts"] == ["att1"]
    assert (record["rows"], record["counts"], record["chunks"]) == (2, {"ok": 2}, 1)
    assert record["files"] == committer.files and record["retired"] == {}
    assert record["sampling"] == {"num_frames": 4, "mode": "uniform"}
    assert (record["videos"], record["skipped"], record["processed"]) == (3, 1, 2)
    chunk = json.loads(Path(root, "_runs", "r", "att1", "chunk-000001.json").read_text())
    assert list(chunk) == [
        "run_id", "attempt", "seq", "run_date", "committed_at", "files", "rows", "counts",
        "videos",
    ]  # fmt: skip
    assert (chunk["seq"], chunk["rows"], chunk["videos"]) == (1, 2, 1)


def test_failed_commit_says_so_and_keeps_the_earlier_commit(tmp_path):
    root = str(tmp_path / "out")
    _commit_run(root, StorageOptions(), "r", {"a": 1}, minute=0)
    committer = RunCommitter(root, "r", "att9", DAY, StorageOptions())
    committer.on_write_start()
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(write_part(clip_rows({"a": 1}, "r", 9), committer.target))
    runs = tmp_path / "out" / "_runs" / "r"
    (runs / "att9").write_text("a file where the chunk folder must go")  # writes fail
    with pytest.raises(CommitError, match="could not commit chunk 1 of run 'r' to ") as failed:
        committer.commit_chunk(tracker.take())
    committer.on_write_failed(failed.value)
    assert read_latest(root, StorageOptions())["created_at"].to_pylist()[0].minute == 0


def test_relative_local_output_never_deletes_its_own_files(tmp_path, monkeypatch):
    """A relative output path (the config makes it absolute; here it reaches the sink as is)."""
    monkeypatch.chdir(tmp_path)
    first = _commit_run("out", StorageOptions(), "r", {"a": 1, "b": 1}, minute=0, grace_s=0)
    assert first.files and all(Path(f).exists() for f in first.files)
    second = _commit_run("out", StorageOptions(), "r", {"a": 1, "b": 1}, minute=3, grace_s=0)
    assert all(Path(f).exists() for f in second.files)
    assert read_latest("out", StorageOptions()).num_rows == 2
