"""The chunk tracker (pure): which written parts may be committed, and when.

Write results are made by hand here: `VideoProgress(uri, rows in the part, the video's total
or 0 when this part does not know it, duration, ok spans)`.
"""

from __future__ import annotations

from pipeline.output.chunks import ChunkTracker
from pipeline.output.records import VideoProgress, WriteResult


def _result(file: str, *videos: VideoProgress) -> WriteResult:
    return WriteResult(file, sum(v.rows for v in videos), {"ok": 1}, videos)


def test_coverage_adds_up_when_a_video_completes_across_files():
    """Video a: 10 s, ok clips 0-4 in f1 and 3-8 in f2 (overlap counts once) -> 8 s, counted
    only once both files are in; video b: 5 s, nothing ok; video c is never finished and is
    counted when a forced take commits it as it is."""
    tracker = ChunkTracker(chunk_videos=100, chunk_seconds=1e9)
    tracker.add(
        _result("f1", VideoProgress("a", 1, 0, 10.0, ((0.0, 4.0),)), VideoProgress("b", 1, 1, 5.0))
    )
    assert (tracker.covered_s, tracker.video_s, tracker.completed_videos) == (0.0, 5.0, 1)
    tracker.add(
        _result(
            "f2",
            VideoProgress("a", 1, 2, 10.0, ((3.0, 8.0),)),
            VideoProgress("c", 1, 3, 6.0, ((0.0, 2.0),)),
        )
    )
    assert (tracker.covered_s, tracker.video_s, tracker.completed_videos) == (8.0, 15.0, 2)
    tracker.take(force=True)
    assert (tracker.covered_s, tracker.video_s, tracker.completed_videos) == (10.0, 21.0, 3)


def test_a_file_waits_until_every_video_in_it_is_complete():
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(_result("f1", VideoProgress("a", 2, 2), VideoProgress("b", 1, 3)))  # b goes on
    assert not tracker.due()  # a is complete but f1 also holds part of b
    tracker.add(_result("f2", VideoProgress("b", 2, 3)))
    assert tracker.due()
    chunk = tracker.take()
    assert sorted(chunk.files) == ["f1", "f2"] and sorted(chunk.videos) == ["a", "b"]
    assert tracker.take() is None


def test_chunks_cut_by_video_count_or_time():
    now = [0.0]
    tracker = ChunkTracker(chunk_videos=3, chunk_seconds=60, clock=lambda: now[0])
    tracker.add(_result("f1", VideoProgress("a", 1, 1)))
    assert not tracker.due()
    now[0] = 61
    assert tracker.due()
    assert tracker.take().files == ["f1"]
    for i, uri in enumerate("bcd"):
        tracker.add(_result(f"g{i}", VideoProgress(uri, 1, 1)))
    assert tracker.due() and len(tracker.take().videos) == 3


def test_time_cut_is_measured_from_the_last_commit_and_inclusive():
    """Caught by mutation testing: `clock + since`, `>` for `>=`, and a start time that is not
    reset by a commit all passed the test above."""
    now = [100.0]
    tracker = ChunkTracker(chunk_videos=99, chunk_seconds=60, clock=lambda: now[0])
    tracker.add(_result("f1", VideoProgress("a", 1, 1)))
    now[0] = 159.9
    assert not tracker.due()
    now[0] = 160.0  # exactly chunk_seconds after the tracker started
    assert tracker.due()
    tracker.take()
    tracker.add(_result("f2", VideoProgress("b", 1, 1)))
    now[0] = 219.9
    assert not tracker.due()  # 59.9 s after the last commit, not after the start
    now[0] = 220.0
    assert tracker.due()


def test_a_chunk_counts_its_rows_and_videos_and_remembers_completed_ones():
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(_result("f1", VideoProgress("a", 2, 2), VideoProgress("b", 3, 3)))
    chunk = tracker.take()
    assert (chunk.rows, sorted(chunk.videos)) == (5, ["a", "b"])
    assert tracker.completed_videos == 2


def test_a_chunk_adds_up_the_counts_of_its_files():
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(WriteResult("f1", 3, {"ok": 2, "model_error": 1}, (VideoProgress("a", 3, 4),)))
    tracker.add(WriteResult("f2", 1, {"ok": 1}, (VideoProgress("a", 1, 0),)))
    chunk = tracker.take()
    assert (chunk.rows, chunk.counts) == (4, {"ok": 3, "model_error": 1})


def test_a_finished_file_is_not_held_back_by_an_unrelated_unfinished_one():
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(_result("f1", VideoProgress("a", 1, 2)))
    tracker.add(_result("f2", VideoProgress("b", 2, 2)))
    tracker.add(_result("f3", VideoProgress("c", 3, 3)))
    chunk = tracker.take()
    assert (chunk.files, chunk.rows, chunk.videos) == (["f2", "f3"], 5, ["b", "c"])


def test_a_file_with_two_unfinished_videos_waits_for_both():
    """Caught: f2 holds only `a`, complete once f2 arrives, and was committed alone while
    `a`'s other row sat in f1 (waiting on `b`): readers saw half of `a`. Files sharing a
    video go together."""
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(_result("f1", VideoProgress("a", 1, 2), VideoProgress("b", 1, 2)))
    tracker.add(_result("f2", VideoProgress("a", 1, 2)))
    assert tracker.take() is None  # f1 still holds part of b
    tracker.add(_result("f3", VideoProgress("b", 1, 2)))
    assert sorted(tracker.take().files) == ["f1", "f2", "f3"]


def test_forced_take_includes_incomplete_videos():
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(_result("f1", VideoProgress("a", 1, 2)))
    assert tracker.incomplete_videos == ["a"] and tracker.take() is None
    assert tracker.take(force=True).files == ["f1"]


def test_a_streamed_video_is_complete_only_once_its_last_row_is_written():
    """Decode streams a video's clips before it knows how many there are: only the last row
    carries the total (0 elsewhere). Caught: treating an unknown total as "whole in this file"
    would commit the first file of a long video while its other clips were still in flight."""
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(_result("f1", VideoProgress("long", 2, 0)))  # clips 0-1, total not known yet
    assert not tracker.due() and tracker.take() is None
    tracker.add(_result("f3", VideoProgress("long", 1, 4)))  # the last clip, before clip 2
    assert not tracker.due()
    tracker.add(_result("f2", VideoProgress("long", 1, 0)))
    assert tracker.due()
    chunk = tracker.take()
    assert sorted(chunk.files) == ["f1", "f2", "f3"] and chunk.videos == ["long"]


def test_the_driver_is_told_how_long_until_a_chunk_is_due_by_time():
    """chunk_seconds 60, tracker started at t=100: nothing ready -> no deadline; f1 ready at
    t=130 (a is complete) -> 30 s left; at t=160 due (0); after the take, nothing ready again;
    f2 ready at t=170 -> due 60 s after that take (t=160), so 50 s left. A file that waits on
    an incomplete video gives no deadline: it cannot be committed whenever the time comes."""
    now = [100.0]
    tracker = ChunkTracker(chunk_videos=99, chunk_seconds=60, clock=lambda: now[0])
    assert tracker.wait_s() is None
    now[0] = 130.0
    tracker.add(_result("f1", VideoProgress("a", 1, 1)))
    assert tracker.wait_s() == 30.0 and not tracker.due()
    now[0] = 160.0
    assert tracker.wait_s() == 0.0 and tracker.due()
    tracker.take()
    assert tracker.wait_s() is None
    now[0] = 170.0
    tracker.add(_result("f2", VideoProgress("b", 1, 1)))
    assert tracker.wait_s() == 50.0
    now[0] = 500.0
    assert tracker.wait_s() == 0.0  # overdue: 0, never negative
    tracker.take()
    tracker.add(_result("f3", VideoProgress("c", 1, 2)))  # c is not complete
    assert tracker.wait_s() is None
