"""The sink without Ray: parts, chunk commits, the lease, replacement with a grace period.

Local folders and the moto S3 server on loopback; rows are made here, not by the pipeline.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.core.errors import CommitError, RunLocked
from pipeline.core.storage import StorageOptions
from pipeline.output.chunks import ChunkTracker
from pipeline.output.commit import RunCommitter
from pipeline.output.lease import RunLease
from pipeline.output.part_writer import VIDEO_ROWS, write_part
from pipeline.output.reading import read_all, read_latest, snapshot
from pipeline.output.schema import rows_to_table

DAY = date(2026, 1, 2)


def _rows(videos: dict[str, int], run: str, minute: int = 0) -> pa.Table:
    rows = []
    for uri, clips in videos.items():
        for clip in range(clips):
            rows.append(
                {
                    "run_id": run, "video_uri": uri, "video_id": f"id-{uri}",
                    "clip_id": f"id-{uri}:{clip}", "clip_index": clip,
                    "fingerprint": f"W-{uri}:{clip}", "status": "ok", "caption": f"{run}",
                    "created_at": datetime(2026, 1, 2, tzinfo=UTC) + timedelta(minutes=minute),
                    "tags": [], "tag_scores": [], "frame_indices": [], "frame_times_s": [],
                }
            )  # fmt: skip
    table = rows_to_table(rows)
    expected = [videos[r["video_uri"]] for r in rows]
    return table.append_column(VIDEO_ROWS, pa.array(expected, pa.int32()))


# -- ChunkTracker (pure) -------------------------------------------------------------------


def _result(file: str, videos: list[tuple[str, int, int]]) -> dict:
    return {"file": file, "rows": sum(v[1] for v in videos), "counts": {"ok": 1}, "videos": videos}


def test_coverage_adds_up_when_a_video_completes_across_files():
    """Video a: 10 s, ok clips 0-4 in f1 and 3-8 in f2 (overlap counts once) -> 8 s, counted
    only once both files are in; video b: 5 s, nothing ok; video c is never finished and is
    counted when a forced take commits it as it is."""
    tracker = ChunkTracker(chunk_videos=100, chunk_seconds=1e9)
    tracker.add(_result("f1", [("a", 1, 0, 10.0, [[0.0, 4.0]]), ("b", 1, 1, 5.0, [])]))
    assert (tracker.covered_s, tracker.video_s, tracker.completed_videos) == (0.0, 5.0, 1)
    tracker.add(_result("f2", [("a", 1, 2, 10.0, [[3.0, 8.0]]), ("c", 1, 3, 6.0, [[0, 2]])]))
    assert (tracker.covered_s, tracker.video_s, tracker.completed_videos) == (8.0, 15.0, 2)
    tracker.take(force=True)
    assert (tracker.covered_s, tracker.video_s, tracker.completed_videos) == (10.0, 21.0, 3)


def test_a_write_result_carries_each_videos_duration_and_ok_spans(tmp_path):
    rows = _rows({"a": 3, "b": 1}, "r")
    starts, ends = [0.0, 2.0, 3.0, 0.0], [2.0, 4.0, 5.0, 1.0]
    rows = rows.set_column(rows.schema.get_field_index("start_s"), "start_s", pa.array(starts))
    rows = rows.set_column(rows.schema.get_field_index("end_s"), "end_s", pa.array(ends))
    durations = pa.array([6.0, 6.0, 6.0, 1.0])
    rows = rows.set_column(
        rows.schema.get_field_index("video_duration_s"), "video_duration_s", durations
    )
    status = pa.array(["ok", "ok", "model_error", "ok"])
    rows = rows.set_column(rows.schema.get_field_index("status"), "status", status)
    committer = RunCommitter(str(tmp_path / "out"), "r", "a1", DAY)
    result = write_part(rows, committer.target)
    assert result["videos"] == [["a", 3, 3, 6.0, [[0.0, 4.0]]], ["b", 1, 1, 1.0, [[0.0, 1.0]]]]
    assert result["counts"] == {"ok": 3, "model_error": 1}


def test_a_file_waits_until_every_video_in_it_is_complete():
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(_result("f1", [("a", 2, 2), ("b", 1, 3)]))  # b continues in f2
    assert not tracker.due()  # a is complete but f1 also holds part of b
    tracker.add(_result("f2", [("b", 2, 3)]))
    assert tracker.due()
    chunk = tracker.take()
    assert sorted(chunk.files) == ["f1", "f2"] and sorted(chunk.videos) == ["a", "b"]
    assert tracker.take() is None


def test_chunks_cut_by_video_count_or_time():
    now = [0.0]
    tracker = ChunkTracker(chunk_videos=3, chunk_seconds=60, clock=lambda: now[0])
    tracker.add(_result("f1", [("a", 1, 1)]))
    assert not tracker.due()
    now[0] = 61
    assert tracker.due()
    assert tracker.take().files == ["f1"]
    for i, uri in enumerate("bcd"):
        tracker.add(_result(f"g{i}", [(uri, 1, 1)]))
    assert tracker.due() and len(tracker.take().videos) == 3


def test_time_cut_is_measured_from_the_last_commit_and_inclusive():
    """Caught by mutation testing: `clock + since`, `>` for `>=`, and a start time that is not
    reset by a commit all passed the test above."""
    now = [100.0]
    tracker = ChunkTracker(chunk_videos=99, chunk_seconds=60, clock=lambda: now[0])
    tracker.add(_result("f1", [("a", 1, 1)]))
    now[0] = 159.9
    assert not tracker.due()
    now[0] = 160.0  # exactly chunk_seconds after the tracker started
    assert tracker.due()
    tracker.take()
    tracker.add(_result("f2", [("b", 1, 1)]))
    now[0] = 219.9
    assert not tracker.due()  # 59.9 s after the last commit, not after the start
    now[0] = 220.0
    assert tracker.due()


def test_a_chunk_counts_its_rows_and_videos_and_remembers_completed_ones():
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(_result("f1", [("a", 2, 2), ("b", 3, 3)]))
    chunk = tracker.take()
    assert (chunk.rows, sorted(chunk.videos)) == (5, ["a", "b"])
    assert tracker.completed_videos == 2


def test_a_finished_file_is_not_held_back_by_an_unrelated_unfinished_one():
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(_result("f1", [("a", 1, 2)]))
    tracker.add(_result("f2", [("b", 2, 2)]))
    tracker.add(_result("f3", [("c", 3, 3)]))
    chunk = tracker.take()
    assert (chunk.files, chunk.rows, chunk.videos) == (["f2", "f3"], 5, ["b", "c"])


def test_a_file_with_two_unfinished_videos_waits_for_both():
    """Caught: f2 holds only `a`, complete once f2 arrives, and was committed alone while
    `a`'s other row sat in f1 (waiting on `b`): readers saw half of `a`. Files sharing a
    video go together."""
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(_result("f1", [("a", 1, 2), ("b", 1, 2)]))
    tracker.add(_result("f2", [("a", 1, 2)]))
    assert tracker.take() is None  # f1 still holds part of b
    tracker.add(_result("f3", [("b", 1, 2)]))
    assert sorted(tracker.take().files) == ["f1", "f2", "f3"]


def test_forced_take_includes_incomplete_videos():
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(_result("f1", [("a", 1, 2)]))
    assert tracker.incomplete_videos == ["a"] and tracker.take() is None
    assert tracker.take(force=True).files == ["f1"]


# -- the lease ------------------------------------------------------------------------------


def _output(kind: str, tmp_path: Path, s3_client, s3_endpoint) -> tuple[str, StorageOptions]:
    if kind == "local":
        return str(tmp_path / "out"), StorageOptions()
    bucket = f"sink-{os.urandom(4).hex()}"
    s3_client.create_bucket(Bucket=bucket)
    return f"s3://{bucket}/out", StorageOptions(endpoint_url=s3_endpoint)


@pytest.fixture(params=["local", "s3"])
def output(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "out"), StorageOptions()
    s3_client = request.getfixturevalue("s3_client")
    endpoint = request.getfixturevalue("s3_endpoint")
    return _output("s3", tmp_path, s3_client, endpoint)


def test_a_second_live_writer_is_refused(output):
    root, options = output
    first = RunLease(root, "night", options, ttl_s=60)
    first.acquire()
    second = RunLease(root, "night", options, ttl_s=60)
    second.owner = "elsewhere"
    # same host and a live pid (ours): the holder is alive, so the second writer is refused
    with pytest.raises(RunLocked, match="is being written by"):
        second.acquire()
    first.release()
    second.acquire()  # released: free to take
    second.release()


def _hold_and_die(root: str, endpoint: str | None) -> None:
    RunLease(root, "night", StorageOptions(endpoint_url=endpoint), ttl_s=600).acquire()
    os._exit(0)  # dies without releasing, like a SIGKILLed driver


def test_a_dead_holder_on_this_host_is_taken_over_and_fenced(output):
    root, options = output
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_hold_and_die, args=(root, options.endpoint_url))
    proc.start()
    proc.join(60)
    taker = RunLease(root, "night", options, ttl_s=60)
    taker.acquire()  # the holder's pid is gone
    assert taker.generation == 1
    taker.release()


def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_commit(output):
    root, options = output
    old = RunLease(root, "night", options, ttl_s=5)
    old.acquire()
    old._stop.set()  # a holder that stopped renewing (paused, partitioned)
    body = json.loads(old._body())
    body["expires_at"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    body["host"] = "another-host"
    from pipeline.output.store import _atomic_text

    _atomic_text(old.fs, old._path(0), json.dumps(body), remote=old.remote)
    new = RunLease(root, "night", options, ttl_s=60)
    new.acquire()
    with pytest.raises(RunLocked, match="taken over"):
        old.check()
    new.release()


# -- commits --------------------------------------------------------------------------------


def _commit_run(root, options, run, videos, *, mode="replace", grace_s=3600.0, minute=0):
    committer = RunCommitter(root, run, f"att{minute}", DAY, options, mode=mode, grace_s=grace_s)
    committer.begin()
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    for uri, clips in videos.items():
        tracker.add(write_part(_rows({uri: clips}, run, minute), committer.target))
        if tracker.due():
            committer.commit_chunk(tracker.take())
    committer.finish({"videos": len(videos)})
    return committer


def test_chunks_are_visible_before_the_run_ends_and_a_crash_keeps_them(output):
    root, options = output
    committer = RunCommitter(root, "night", "a1", DAY, options, mode="resume")
    committer.begin()
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(write_part(_rows({"v1": 2}, "night"), committer.target))
    committer.commit_chunk(tracker.take())
    write_part(_rows({"v2": 1}, "night"), committer.target)  # written, never committed
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
    from pipeline.core.storage import filesystem, strip_scheme

    fs = filesystem(root, options)
    assert all(fs.exists(strip_scheme(f)) for f in listed)  # grace: still readable
    assert set(first.files) == set(listed)


def test_grace_zero_removes_the_replaced_attempt(output):
    root, options = output
    first = _commit_run(root, options, "r", {"a": 1}, minute=0)
    _commit_run(root, options, "r", {"a": 1}, minute=5, grace_s=0)
    from pipeline.core.storage import filesystem, strip_scheme

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
    assert sorted(read_latest(root, options)["video_uri"].to_pylist()) == ["a", "b", "b"]


def test_failed_commit_says_so_and_keeps_the_earlier_commit(tmp_path):
    root = str(tmp_path / "out")
    _commit_run(root, StorageOptions(), "r", {"a": 1}, minute=0)
    committer = RunCommitter(root, "r", "att9", DAY, StorageOptions())
    committer.begin()
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(write_part(_rows({"a": 1}, "r", 9), committer.target))
    runs = tmp_path / "out" / "_runs" / "r"
    (runs / "att9").write_text("a file where the chunk folder must go")  # writes fail
    with pytest.raises(CommitError, match="chunks committed before it are kept"):
        committer.commit_chunk(tracker.take())
    committer.abandon()
    assert read_latest(root, StorageOptions())["created_at"].to_pylist()[0].minute == 0


def test_relative_local_output_never_deletes_its_own_files(tmp_path, monkeypatch):
    """A relative output path (the config makes it absolute; here it reaches the sink as is)."""
    monkeypatch.chdir(tmp_path)
    first = _commit_run("out", StorageOptions(), "r", {"a": 1, "b": 1}, minute=0, grace_s=0)
    assert first.files and all(Path(f).exists() for f in first.files)
    second = _commit_run("out", StorageOptions(), "r", {"a": 1, "b": 1}, minute=3, grace_s=0)
    assert all(Path(f).exists() for f in second.files)
    assert read_latest("out", StorageOptions()).num_rows == 2


def test_a_streamed_video_is_complete_only_once_its_last_row_is_written():
    """Decode streams a video's clips before it knows how many there are: only the last row
    carries the total (0 elsewhere). Caught: treating an unknown total as "whole in this file"
    would commit the first file of a long video while its other clips were still in flight."""
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(_result("f1", [("long", 2, 0)]))  # clips 0-1, total not known yet
    assert not tracker.due() and tracker.take() is None
    tracker.add(_result("f3", [("long", 1, 4)]))  # the last clip arrives before clip 2
    assert not tracker.due()
    tracker.add(_result("f2", [("long", 1, 0)]))
    assert tracker.due()
    chunk = tracker.take()
    assert sorted(chunk.files) == ["f1", "f2", "f3"] and chunk.videos == ["long"]


def test_rows_leave_decode_one_by_one_with_the_total_on_the_last():
    from pipeline.ray_data import with_video_total

    produced: list[int] = []

    def clips():
        for i in range(3):
            produced.append(i)
            yield {"clip_index": i}

    stream = with_video_total(clips())
    first = next(stream)
    assert first == {"clip_index": 0, VIDEO_ROWS: 0} and produced == [0, 1]  # one ahead only
    assert [row[VIDEO_ROWS] for row in stream] == [0, 3]
    assert list(with_video_total([])) == []
    assert list(with_video_total([{"clip_index": -1}])) == [{"clip_index": -1, VIDEO_ROWS: 1}]
