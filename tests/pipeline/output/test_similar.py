"""`similar` and `dedup` over committed outputs (local and S3), with vectors made by hand:
decisions committed like a run, exactly once, and `duplicate_of` in the `clips` view."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from pipeline.output.chunks import Chunk
from pipeline.output.commit import RunCommitter
from pipeline.output.dedup_store import commit_decisions, decisions_table, read_decisions
from pipeline.output.part_writer import write_part
from pipeline.output.records import RunDetails
from pipeline.output.similar import dedup, similar
from pipeline.output.views import register_views
from tests.pipeline.output.parts import DAY, clip_rows


def _angles(degrees: list[float], width: int) -> np.ndarray:
    """Unit vectors in the first two of `width` dimensions, at these angles."""
    a = np.deg2rad(degrees)
    x = np.zeros((len(degrees), width), np.float16)
    x[:, 0], x[:, 1] = np.cos(a), np.sin(a)
    return x


def _commit_run(output, options, run_id, videos, degrees, minute, key="m@1", blank=()):
    """One run: a clip per video, embedding and footage both at the given angles (the
    footage of the videos in `blank` all zeros, as a blank clip's fingerprint is)."""
    table = clip_rows({v: 1 for v in videos}, run_id, minute)
    n = table.num_rows
    for name, width in (("embedding", 128), ("footage", 192)):
        vectors = _angles(degrees, width)
        if name == "footage":
            vectors[[v in blank for v in videos]] = 0
        flat = pa.array(vectors.ravel())
        column = pa.FixedSizeListArray.from_arrays(flat, width)
        table = table.set_column(table.column_names.index(name), name, column)
    keys = pa.array([key] * n)
    table = table.set_column(table.column_names.index("embedding_key"), "embedding_key", keys)
    committer = RunCommitter(output, run_id, "a1", DAY, options)
    committer.on_write_start()
    result = write_part(table, committer.target)
    committer.commit_chunk(Chunk([result.file], n, {"ok": n}, list(videos)))
    committer.on_write_complete(RunDetails())


def test_similar_ranks_by_cosine(output):
    root, options = output
    _commit_run(root, options, "r1", ["a", "b", "c", "d"], [0, 30, 5, 90], 0)
    found = similar(root, "id-a:0", 2, options)
    assert found["clip_id"].to_pylist() == ["id-c:0", "id-b:0"]
    assert found["similarity"].to_pylist() == pytest.approx([0.9962, 0.8660], abs=1e-3)
    with pytest.raises(LookupError, match="nope"):
        similar(root, "nope", 2, options)


def test_embeddings_of_another_key_are_not_compared(output):
    root, options = output
    _commit_run(root, options, "r1", ["a", "b"], [0, 1], 0, key="m@1")
    _commit_run(root, options, "r2", ["c"], [0], 1, key="m@2")
    assert similar(root, "id-a:0", 5, options)["clip_id"].to_pylist() == ["id-b:0"]


def test_dedup_commits_once_and_the_view_shows_duplicate_of(output):
    """Night 1: a, b (2 degrees from a: same footage), c (far). Night 2 adds d, 1 degree from
    b: it is marked against a, the clip kept, never against b. A second dedup decides
    nothing; `clips.duplicate_of` and `duplicates` show the decisions in SQL."""
    root, options = output
    _commit_run(root, options, "n1", ["a", "b", "c"], [0, 2, 60], 0)
    first = dedup(root, "footage", 0.01, options)
    assert (first.decided, first.kept, first.duplicates) == (3, 2, 1)
    _commit_run(root, options, "n2", ["d"], [3], 5)
    second = dedup(root, "footage", 0.01, options)
    assert (second.decided, second.duplicates) == (1, 1)
    assert dedup(root, "footage", 0.01, options).decided == 0
    con = duckdb.connect()
    register_views(con, root, options)
    rows = con.sql("SELECT clip_id, duplicate_of FROM clips ORDER BY clip_id").fetchall()
    assert rows == [("id-a:0", None), ("id-b:0", "id-a:0"), ("id-c:0", None), ("id-d:0", "id-a:0")]
    modes = con.sql("SELECT DISTINCT mode FROM duplicates").fetchall()
    assert modes == [("footage",)]


def test_a_dedup_killed_after_its_first_chunk_keeps_it_and_the_next_finishes(output):
    """The first part is committed, then the dedup dies: its decision stays, and the next
    dedup decides only the clips still undecided (each clip decided once)."""
    root, options = output
    _commit_run(root, options, "n1", ["a", "b", "c"], [0, 1, 60], 0)

    def dies():
        yield decisions_table(["id-a:0"], ["a"], [None], [None], "footage", 0.01)
        raise KeyboardInterrupt  # the driver killed mid-dedup

    with pytest.raises(KeyboardInterrupt):
        commit_decisions(root, "footage", dies, options)
    assert read_decisions(root, "footage", options)["clip_id"].to_pylist() == ["id-a:0"]
    rest = dedup(root, "footage", 0.01, options)
    assert rest.decided == 2
    decided = read_decisions(root, "footage", options)
    pairs = dict(
        zip(decided["clip_id"].to_pylist(), decided["duplicate_of"].to_pylist(), strict=False)
    )
    assert pairs == {"id-a:0": None, "id-b:0": "id-a:0", "id-c:0": None}


def test_semantic_mode_is_its_own_grouping(output):
    root, options = output
    _commit_run(root, options, "n1", ["a", "b"], [0, 10], 0)
    assert dedup(root, "semantic", 0.05, options).duplicates == 1  # 1 - cos(10) = 0.015
    assert read_decisions(root, "footage", options).num_rows == 0


def test_similar_clips_in_sql_scores_a_blank_footage_as_zero(output):
    """A clip whose footage fingerprint is all zeros: its footage term is 0 (as `similar`
    counts it), so SQL ranks it by half its embedding cosine, never NaN."""
    root, options = output
    _commit_run(root, options, "r1", ["a", "b", "c"], [0, 60, 90], 0, blank=("b",))
    con = duckdb.connect()
    register_views(con, root, options)
    rows = con.sql("SELECT clip_id, similarity FROM similar_clips('id-a:0', k := 5)").fetchall()
    assert [r[0] for r in rows] == ["id-b:0", "id-c:0"]
    assert [r[1] for r in rows] == pytest.approx([0.25, 0.0], abs=1e-3)  # (cos 60 + 0) / 2
    python = similar(root, "id-a:0", 5, options)
    assert python["clip_id"].to_pylist() == [r[0] for r in rows]


def _manifests(root, options, prefix):
    from pipeline.core.storage import filesystem, join, strip_scheme
    from pipeline.output.index_store import INDEX_DIR, MANIFEST, saved_names

    fs = filesystem(root, options)
    found = {}
    for name in saved_names(root, prefix, options):
        folder = join(root, INDEX_DIR, name)
        with fs.open(strip_scheme(join(folder, MANIFEST)), "rb") as fh:
            found[name] = json.loads(fh.read())
        found[name]["files"] = sorted(
            p.rsplit("/", 1)[-1] for p in fs.ls(strip_scheme(folder), detail=False)
        )
    return found


def test_dedup_saves_the_kept_clips_index_and_the_next_night_updates_it(output):
    """Night 1: a, b (a copy of a), c: the footage index holds the 2 kept clips. Night 2: d
    (new footage) and e (a copy of c): it holds 3, under one new generation (the older files
    gone), and e was marked against c through it."""
    root, options = output
    _commit_run(root, options, "n1", ["a", "b", "c"], [0, 1, 60], 0)
    dedup(root, "footage", 0.01, options)
    (first,) = _manifests(root, options, "dedup-footage-").values()
    assert (first["kind"], first["vectors"], first["slots"]) == ("exact", 2, 2)
    _commit_run(root, options, "n2", ["d", "e"], [120, 60.5], 5)
    assert dedup(root, "footage", 0.01, options).duplicates == 1
    (second,) = _manifests(root, options, "dedup-footage-").values()
    assert (second["vectors"], second["slots"]) == (3, 3)
    assert second["generation"] != first["generation"]
    g = second["generation"]
    assert second["files"] == sorted([f"{g}.index", f"{g}.slots.parquet", "index.json"])
    decided = read_decisions(root, "footage", options)
    ids, kept = decided["clip_id"].to_pylist(), decided["duplicate_of"].to_pylist()
    pairs = dict(zip(ids, kept, strict=True))
    assert pairs["id-e:0"] == "id-c:0" and pairs["id-d:0"] is None


def test_a_dedup_killed_before_saving_its_index_is_caught_up_by_the_next(output):
    """Decisions committed with no index saved (the driver died in between): the next dedup
    adds the kept clip the index lacks and decides the rest against it."""
    root, options = output
    _commit_run(root, options, "n1", ["a", "b"], [0, 0.5], 0)
    only_a = decisions_table(["id-a:0"], ["a"], [None], [None], "footage", 0.01)
    commit_decisions(root, "footage", lambda: [only_a], options)
    assert _manifests(root, options, "dedup-") == {}
    assert dedup(root, "footage", 0.01, options).duplicates == 1  # b -> a, a from the catch-up
    (saved,) = _manifests(root, options, "dedup-footage-").values()
    assert saved["vectors"] == 1


def test_similar_follows_a_clip_annotated_again(output):
    """`similar` reads its saved index; after b is annotated again (a newer row, now at 90
    degrees), the stale index is brought up to date: b's old vector is gone."""
    root, options = output
    _commit_run(root, options, "r1", ["a", "b", "c"], [0, 30, 45], 0)
    assert similar(root, "id-a:0", 1, options)["clip_id"].to_pylist() == ["id-b:0"]
    (before,) = _manifests(root, options, "similar-").values()
    assert before["slots"] == 3
    _commit_run(root, options, "r2", ["b"], [90], 5)
    found = similar(root, "id-a:0", 2, options)
    assert found["clip_id"].to_pylist() == ["id-c:0", "id-b:0"]
    assert found["similarity"].to_pylist() == pytest.approx([0.7071, 0.0], abs=1e-3)
    (after,) = _manifests(root, options, "similar-").values()
    assert (after["vectors"], after["slots"]) == (3, 4)  # b's old slot emptied, a new one
