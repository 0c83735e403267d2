"""The records' JSON forms and the run record's rules, on records written by hand.

Expected values are worked out here from the rules in `pipeline.output.run_record`, never
computed by the code under test.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from pipeline.output.records import (
    AttemptWork,
    ChunkRecord,
    LeaseBody,
    RetiredAttempt,
    RunDetails,
    RunRecord,
    SamplingInfo,
    VideoProgress,
    WriteResult,
)
from pipeline.output.run_record import build_run_record

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
OUT = "/data/out/clips/run_date=2026-01-02/run_id=r"


def _part(attempt: str, n: int) -> str:
    return f"{OUT}/part-{attempt}-{n:012x}.parquet"


def _chunk(attempt: str, seq: int, files: list[str], counts: dict[str, int]) -> ChunkRecord:
    return ChunkRecord("r", attempt, seq, "2026-01-02", "2026-01-02T00:00:00+00:00",
                       tuple(files), sum(counts.values()), counts, 1)  # fmt: skip


def _work(attempt: str, files: list[str], counts: dict[str, int], chunks: int = 1) -> AttemptWork:
    return AttemptWork("r", "2026-01-02", attempt, tuple(files), counts, chunks)


# -- JSON forms ------------------------------------------------------------------------------


def test_a_write_result_survives_the_trip_to_the_driver():
    result = WriteResult(
        "s3://b/out/part-1.parquet", 5, {"ok": 4, "model_error": 1},
        (VideoProgress("a", 3, 3, 6.0, ((0.0, 4.0),)), VideoProgress("b", 2, 0)),
    )  # fmt: skip
    assert WriteResult.from_json(result.to_json()) == result
    sent = json.loads(result.to_json())
    assert sent["videos"][0] == {
        "uri": "a", "rows": 3, "total": 3, "duration_s": 6.0, "ok_spans": [[0.0, 4.0]],
    }  # fmt: skip


def test_a_run_record_written_before_this_version_still_reads():
    """A record as `RunCommitter.finish` wrote it (dict assembled by hand), and one from an
    even older run without the details."""
    old = {
        "run_id": "r", "run_date": "2026-01-02", "committed_at": "2026-01-02T10:00:00+00:00",
        "attempt": "a2", "attempts": ["a2"],
        "retired": {"a1": {"at": "2026-01-02T09:00:00+00:00", "files": [_part("a1", 1)]}},
        "files": [_part("a2", 1)], "counts": {"ok": 2}, "rows": 2,
        "attempt_counts": {"a2": {"ok": 2}}, "chunks": 1,
        "config": {"run_id": "r"}, "mode": "all", "videos": 2, "skipped": 0, "processed": 2,
        "seconds": 12.5, "gpus_per_actor": 1.0, "settings_key": "S", "model_key": "M",
        "sampling": {"num_frames": 8, "mode": "uniform"},
    }  # fmt: skip
    record = RunRecord.from_dict(old)
    assert record.retired == {
        "a1": RetiredAttempt(datetime(2026, 1, 2, 9, tzinfo=timezone.utc), (_part("a1", 1),))
    }
    assert record.details.sampling == SamplingInfo(8, "uniform")
    assert (record.details.seconds, record.last_attempt_rows) == (12.5, 2)
    assert json.loads(record.to_json()) == old
    bare = RunRecord.from_dict({"run_id": "r", "attempts": ["a1"], "files": ["f"], "rows": 1})
    assert (bare.attempts, bare.files, bare.rows, bare.details) == (("a1",), ("f",), 1,
                                                                    RunDetails())  # fmt: skip


def test_a_chunk_record_reads_back_as_written():
    chunk = _chunk("a1", 3, [_part("a1", 1), _part("a1", 2)], {"ok": 3, "decode_error": 1})
    assert ChunkRecord.from_dict(json.loads(chunk.to_json())) == chunk
    assert json.loads(chunk.to_json())["rows"] == 4


def test_a_lease_body_reads_back_as_written():
    body = LeaseBody("h:1:ab", "h", 1, NOW, NOW.replace(hour=2), released=True)
    assert LeaseBody.from_json(body.to_json()) == body
    assert json.loads(body.to_json())["expires_at"] == "2026-01-02T03:04:05+00:00"


# -- the run record's rules ------------------------------------------------------------------


def test_the_first_attempt_of_a_run_is_its_only_live_attempt():
    work = _work("a1", [_part("a1", 1)], {"ok": 2, "decode_error": 1})
    record = build_run_record(None, {}, work, "replace", RunDetails(videos=3), NOW)
    assert record == RunRecord(
        run_id="r", run_date="2026-01-02", committed_at="2026-01-02T03:04:05+00:00",
        attempt="a1", attempts=("a1",), retired={}, files=(_part("a1", 1),),
        counts={"ok": 2, "decode_error": 1}, rows=3,
        attempt_counts={"a1": {"ok": 2, "decode_error": 1}}, chunks=1,
        details=RunDetails(videos=3),
    )  # fmt: skip


def test_a_replacing_attempt_retires_the_earlier_ones_with_their_files():
    """a1 ended (its chunk records already folded into the record: files found by name), a2
    crashed after one chunk; a3 replaces both and counts only its own rows."""
    previous = RunRecord("r", attempts=("a1",), files=(_part("a1", 1), _part("a1", 2)),
                         attempt_counts={"a1": {"ok": 5}}, counts={"ok": 5}, rows=5)  # fmt: skip
    chunks = {"a2": [_chunk("a2", 1, [_part("a2", 1)], {"ok": 1})]}
    work = _work("a3", [_part("a3", 1)], {"ok": 2})
    record = build_run_record(previous, chunks, work, "replace", RunDetails(), NOW)
    assert record.attempts == ("a3",) and record.files == (_part("a3", 1),)
    assert record.retired == {
        "a1": RetiredAttempt(NOW, (_part("a1", 1), _part("a1", 2))),
        "a2": RetiredAttempt(NOW, (_part("a2", 1),)),
    }
    assert (record.counts, record.rows, record.attempt_counts) == (
        {"ok": 2}, 2, {"a3": {"ok": 2}},
    )  # fmt: skip


def test_a_resumed_attempt_keeps_every_earlier_one_and_adds_them_up():
    """a1 ended (2 ok, chunk records gone), a2 crashed after a chunk of 1 ok + 1 error, a3
    resumes with 3 ok: 6 ok + 1 error live. Each earlier attempt's files go in front of what
    is there: a1's, then a2's in front of them."""
    previous = RunRecord("r", attempts=("a1",), files=(_part("a1", 1),),
                         attempt_counts={"a1": {"ok": 2}}, counts={"ok": 2}, rows=2)  # fmt: skip
    chunks = {
        "a1": [],
        "a2": [_chunk("a2", 1, [_part("a2", 1)], {"ok": 1, "decode_error": 1})],
    }
    work = _work("a3", [_part("a3", 1)], {"ok": 3}, chunks=2)
    record = build_run_record(previous, chunks, work, "resume", RunDetails(), NOW)
    assert record.attempts == ("a1", "a2", "a3")
    assert record.files == (_part("a2", 1), _part("a1", 1), _part("a3", 1))
    assert (record.counts, record.rows) == ({"ok": 6, "decode_error": 1}, 7)
    assert record.attempt_counts == {"a1": {"ok": 2}, "a2": {}, "a3": {"ok": 3}}
    assert (record.retired, record.chunks) == ({}, 2)


def test_a_retired_attempt_never_comes_back_to_life():
    """Its chunk records are still on disk during the grace period; a resumed run ignores
    them and the retirement stands."""
    retired = {"a1": RetiredAttempt(NOW, (_part("a1", 1),))}
    previous = RunRecord("r", attempts=("a2",), retired=retired, files=(_part("a2", 1),),
                         attempt_counts={"a2": {"ok": 1}})  # fmt: skip
    chunks = {
        "a1": [_chunk("a1", 1, [_part("a1", 1)], {"ok": 9})],
        "a2": [_chunk("a2", 1, [_part("a2", 1)], {"ok": 1})],
    }
    work = _work("a3", [_part("a3", 1)], {"ok": 1})
    record = build_run_record(previous, chunks, work, "resume", RunDetails(), NOW)
    assert record.attempts == ("a2", "a3") and record.retired == retired
    assert (record.files, record.rows) == ((_part("a2", 1), _part("a3", 1)), 2)


def test_an_attempt_that_ends_again_is_not_its_own_earlier_attempt():
    """A record written by this same attempt (a retry of its own end) changes nothing."""
    previous = RunRecord("r", attempts=("a1",), files=(_part("a1", 1),),
                         attempt_counts={"a1": {"ok": 1}})  # fmt: skip
    chunks = {"a1": [_chunk("a1", 1, [_part("a1", 1)], {"ok": 1})]}
    work = _work("a1", [_part("a1", 1)], {"ok": 1})
    for mode in ("replace", "resume"):
        record = build_run_record(previous, chunks, work, mode, RunDetails(), NOW)
        assert (record.attempts, record.files, record.retired) == (("a1",), (_part("a1", 1),), {})
