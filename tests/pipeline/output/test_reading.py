"""The one reading path: committed files only, each clip's latest row once (Python and SQL).

Outputs are laid out by hand here (Parquet files + JSON records, as the layout in
`pipeline.output.reading` documents), so these tests do not depend on the sink that writes them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.storage import StorageOptions
from pipeline.output.reading import (
    committed_files,
    iter_latest,
    latest_positions,
    read_all,
    read_latest,
    snapshot,
)
from pipeline.output.schema import CLIPS_SCHEMA, rows_to_table
from pipeline.output.views import register_views, runs_table

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _row(uri: str, clip: int, work: str, minute: int, run: str = "r", status: str = "ok"):
    return {
        "run_id": run,
        "video_uri": uri,
        "video_id": f"id-{uri}",
        "clip_id": f"id-{uri}:{clip}",
        "clip_index": clip,
        "fingerprint": f"{work}:{clip}",
        "status": status,
        "error": None if status == "ok" else f"{status} at minute {minute}",
        "caption": f"{uri} {clip} {work} {minute}" if status == "ok" else None,
        "created_at": T0 + timedelta(minutes=minute),
        "tags": [],
        "tag_scores": [],
        "frame_indices": [],
        "frame_times_s": [],
    }


def _keys(rows):
    return rows_to_table(rows).select(
        ["video_uri", "clip_index", "fingerprint", "created_at", "run_id"]
    )


def _chosen(rows) -> set[tuple[str, int, int]]:
    """(uri, clip, minute) of the rows `latest_positions` keeps."""
    keep = latest_positions(_keys(rows))
    return {
        (
            rows[i]["video_uri"],
            rows[i]["clip_index"],
            int((rows[i]["created_at"] - T0).total_seconds() // 60),
        )
        for i in keep
    }


def test_newest_row_of_each_clip_wins():
    rows = [_row("a", 0, "W", 1), _row("a", 1, "W", 1), _row("a", 0, "W", 5), _row("a", 1, "W", 5)]
    assert _chosen(rows) == {("a", 0, 5), ("a", 1, 5)}


def test_retrying_one_failed_clip_keeps_the_other_clips():
    rows = [
        _row("a", 0, "W", 1),
        _row("a", 1, "W", 1, status="model_error"),
        _row("a", 2, "W", 1),
        _row("a", 1, "W", 9, run="retry"),
    ]
    assert _chosen(rows) == {("a", 0, 1), ("a", 1, 9), ("a", 2, 1)}


def test_video_error_then_success_drops_the_error_row():
    rows = [
        _row("a", -1, "W", 1, status="decode_error"),
        _row("a", 0, "W", 4),
        _row("a", 1, "W", 4),
    ]
    assert _chosen(rows) == {("a", 0, 4), ("a", 1, 4)}


def test_success_then_video_error_shows_only_the_error():
    rows = [
        _row("a", 0, "W", 1),
        _row("a", 1, "W", 1),
        _row("a", -1, "W", 4, status="decode_error"),
    ]
    assert _chosen(rows) == {("a", -1, 4)}


def test_changed_clip_count_never_keeps_stale_clip_indices():
    old = [_row("a", i, "OLD", 1) for i in range(5)]
    new = [_row("a", i, "NEW", 7) for i in range(3)]
    assert _chosen(old + new) == {("a", 0, 7), ("a", 1, 7), ("a", 2, 7)}


def test_videos_are_independent_and_ties_broken_by_run():
    rows = [_row("a", 0, "W", 1, run="r1"), _row("a", 0, "W", 1, run="r2"), _row("b", 0, "V", 1)]
    keep = latest_positions(_keys(rows))
    assert [rows[i]["run_id"] for i in keep] == ["r2", "r"]


def test_empty_keys():
    assert len(latest_positions(_keys([]))) == 0


# -- on disk ------------------------------------------------------------------------------


def _write_run(
    output: Path,
    run_id: str,
    attempt: str,
    files: dict[str, list[dict]],
    *,
    run_record: bool,
    retired: dict | None = None,
    at: int = 0,
) -> list[str]:
    uris = []
    for name, rows in files.items():
        path = output / "clips" / "run_date=2026-01-01" / f"run_id={run_id}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows_to_table(rows), path)
        uris.append(str(path))
    chunk = output / "_runs" / run_id / attempt / "chunk-000001.json"
    chunk.parent.mkdir(parents=True, exist_ok=True)
    stamp = (T0 + timedelta(minutes=at)).isoformat()
    chunk.write_text(
        json.dumps(
            {
                "run_id": run_id,
                "attempt": attempt,
                "seq": 1,
                "files": uris,
                "committed_at": stamp,
                "rows": 0,
            }
        )
    )
    if run_record:
        (output / "_runs" / f"{run_id}.json").write_text(
            json.dumps(
                {
                    "run_id": run_id,
                    "attempts": [attempt],
                    "retired": retired or {},
                    "files": uris,
                    "committed_at": stamp,
                    "rows": sum(len(r) for r in files.values()),
                }
            )
        )
    return uris


@pytest.fixture()
def layered(tmp_path: Path) -> Path:
    """Night 1 complete; night 2 crashed after one chunk; an uncommitted orphan file; a
    retired attempt of night 1 whose files are still there (grace period)."""
    out = tmp_path / "out"
    _write_run(
        out,
        "n1",
        "old",
        {"part-old.parquet": [_row("a", 0, "W", 0, run="n1")]},
        run_record=False,
        at=0,
    )
    _write_run(
        out,
        "n1",
        "a1",
        {
            "part-1.parquet": [_row("a", 0, "W", 1, run="n1"), _row("a", 1, "W", 1, run="n1")],
            "part-2.parquet": [_row("b", -1, "V", 1, run="n1", status="decode_error")],
        },
        run_record=True,
        retired={"old": T0.isoformat()},
        at=2,
    )
    _write_run(
        out,
        "n2",
        "a2",
        {
            "part-3.parquet": [_row("b", 0, "V", 10, run="n2"), _row("c", 0, "X", 10, run="n2")],
        },
        run_record=False,
        at=11,
    )
    orphan = out / "clips" / "run_date=2026-01-01" / "run_id=n2" / "part-orphan.parquet"
    pq.write_table(rows_to_table([_row("a", 0, "W", 50, run="n2")]), orphan)
    lease = out / "_runs" / "n2" / "_lease" / "00000000.json"
    lease.parent.mkdir(parents=True)
    lease.write_text("{}")
    return out


def test_snapshot_sees_committed_files_only(layered: Path):
    files = committed_files(str(layered))
    names = [Path(f).name for f in files]
    assert names == ["part-1.parquet", "part-2.parquet", "part-3.parquet"]
    snap = snapshot(str(layered))
    assert set(snap.runs) == {"n1"} and [c["run_id"] for c in snap.chunks] == ["n2"]


def test_read_latest_and_read_all(layered: Path):
    latest = read_latest(str(layered))
    assert latest.schema == CLIPS_SCHEMA
    got = sorted((r["video_uri"], r["clip_index"], r["run_id"]) for r in latest.to_pylist())
    assert got == [("a", 0, "n1"), ("a", 1, "n1"), ("b", 0, "n2"), ("c", 0, "n2")]
    assert read_all(str(layered)).num_rows == 5
    batches = list(iter_latest(str(layered), columns=["video_uri", "clip_index"]))
    assert sum(b.num_rows for b in batches) == 4 and len(batches) == 2  # one per file used


def test_runs_table(layered: Path):
    runs = runs_table(str(layered)).to_pylist()
    assert [(r["run_id"], r["kind"], r["files"]) for r in runs] == [
        ("n1", "run", 2),
        ("n2", "chunk", 1),
    ]


def _duck_rows(con) -> list[tuple]:
    return sorted(
        con.execute("SELECT video_uri, clip_index, run_id, caption FROM clips").fetchall()
    )


def test_sql_views_agree_with_the_python_path(layered: Path):
    con = duckdb.connect()
    register_views(con, str(layered))
    python = sorted(
        (r["video_uri"], r["clip_index"], r["run_id"], r["caption"])
        for r in read_latest(str(layered)).to_pylist()
    )
    assert _duck_rows(con) == python
    assert con.execute("SELECT count(*) FROM clips_all").fetchone()[0] == 5
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    columns = [d[0] for d in con.execute("SELECT * FROM clips LIMIT 0").description]
    assert columns == [*CLIPS_SCHEMA.names, "duplicate_of"]  # from `clipnote dedup`


def test_sql_and_python_agree_on_random_histories(tmp_path: Path):
    import random

    rng = random.Random(3)
    rows = []
    for minute in range(40):
        uri = f"v{rng.randrange(6)}"
        work = rng.choice(["W1", "W2"])
        if rng.random() < 0.2:
            rows.append(_row(uri, -1, work, minute, status="decode_error"))
        else:
            clips = rng.sample(range(4), rng.randrange(1, 5))
            rows += [_row(uri, c, work, minute, run=f"r{minute}") for c in clips]
    out = tmp_path / "out"
    _write_run(out, "r", "a", {"part.parquet": rows}, run_record=True)
    con = duckdb.connect()
    register_views(con, str(out))
    python = sorted(
        (r["video_uri"], r["clip_index"], r["run_id"], r["caption"])
        for r in read_latest(str(out)).to_pylist()
    )
    assert _duck_rows(con) == python
    # and each (uri, clip) once
    assert len({(r[0], r[1]) for r in python}) == len(python)


def test_a_spilled_pass_one_reads_the_same_as_one_in_memory(tmp_path: Path, monkeypatch):
    """Past `PARTITION_ROWS` key rows, "latest" is resolved a hash partition of videos at a
    time from a local spill: same rows, from many files, and the SQL view agrees."""
    import random

    import pipeline.output.reading as reading

    rng = random.Random(11)
    files: dict[str, list] = {}
    for minute in range(120):
        uri = f"v{rng.randrange(25)}"
        work = rng.choice(["W1", "W2"])
        if rng.random() < 0.2:
            rows = [_row(uri, -1, work, minute, status="decode_error")]
        else:
            clips = rng.sample(range(4), rng.randrange(1, 5))
            rows = [_row(uri, c, work, minute, run=f"r{minute:03d}") for c in clips]
        files.setdefault(f"part-{minute % 7}.parquet", []).extend(rows)
    out = tmp_path / "out"
    _write_run(out, "r", "a", files, run_record=True)

    def tuples(table, columns) -> list[tuple]:
        return [tuple(row[c] for c in columns) for row in table.to_pylist()]

    def latest() -> list[tuple]:
        return sorted(tuples(read_latest(str(out)), ("video_uri", "clip_index", "caption")))

    def keys(budget: int) -> list[tuple]:
        def fold(groups):
            return [row for g in groups for row in tuples(g, ("video_uri", "clip_index", "status"))]

        return sorted(reading.fold_latest_keys(str(out), fold, extra=["status"], budget=budget))

    in_memory, in_memory_keys = latest(), keys(10**9)
    monkeypatch.setattr(reading, "PARTITION_ROWS", 5)
    assert latest() == in_memory and keys(5) == in_memory_keys
    assert len(in_memory) == len({(u, c) for u, c, _ in in_memory}) > 25
    con = duckdb.connect()
    register_views(con, str(out))
    sql = con.execute("SELECT video_uri, clip_index, caption FROM clips").fetchall()
    assert sorted(sql) == in_memory


def test_empty_output_reads_empty(tmp_path: Path):
    assert read_latest(str(tmp_path / "nothing")).num_rows == 0
    con = duckdb.connect()
    register_views(con, str(tmp_path / "nothing"))
    assert con.execute("SELECT count(*) FROM clips").fetchone()[0] == 0


def test_views_over_s3_through_fsspec(layered: Path, s3_client, s3_endpoint):
    s3_client.create_bucket(Bucket="reading")
    root = "s3://reading/out"
    for path in layered.rglob("*"):
        if path.is_file():
            key = f"out/{path.relative_to(layered)}"
            body = path.read_bytes()
            if path.suffix == ".json":
                body = body.replace(str(layered).encode(), root.encode())
            s3_client.put_object(Bucket="reading", Key=key, Body=body)
    options = StorageOptions(endpoint_url=s3_endpoint)
    latest = read_latest(root, options)
    assert latest.num_rows == 4
    con = duckdb.connect()
    register_views(con, root, options)
    assert len(_duck_rows(con)) == 4
    assert pa.Table.from_pylist(latest.to_pylist()).num_rows == 4


def test_a_reader_whose_files_vanish_starts_over_from_a_fresh_snapshot(layered: Path):
    """A replacing run removed (after its grace period) files this reader had listed."""
    import pipeline.output.reading as reading

    snap = reading.snapshot(str(layered))
    calls = []

    def first_stale_then_fresh():
        calls.append(1)
        if len(calls) == 1:  # the first pass read a snapshot whose file is gone now
            gone = Path(snap.files[0])
            gone.rename(gone.with_suffix(".moved"))
            try:
                yield from reading._iter_latest_once(str(layered), None, None)
            finally:
                gone.with_suffix(".moved").rename(gone)
        else:
            yield from reading._iter_latest_once(str(layered), None, None)

    batches = reading._collect(first_stale_then_fresh)
    assert len(calls) == 2 and sum(b.num_rows for b in batches) == 4
