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
from tests.pipeline.output.parts import DAY, clip_rows, new_output


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


LOOKUP = """
import sys, time
from pathlib import Path
from pipeline.core.storage import StorageOptions
from pipeline.output import index_store, similar_index, store
from pipeline.output.similar import similar

root, clip, meeting, endpoint, crowd, nth = sys.argv[1:]
meeting = Path(meeting)


def together(save):
    def save_with_the_others(*args, **kwargs):
        (meeting / nth).touch()  # this one found the index stale and refreshed it
        deadline = time.monotonic() + 60
        while len(list(meeting.iterdir())) < int(crowd) and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(int(nth) * 0.02)  # staggered: saves and cleanups interleave
        return save(*args, **kwargs)
    return save_with_the_others


def slowly(write):
    def slow(*args, **kwargs):
        write(*args, **kwargs)
        time.sleep(0.05)  # a slow disk: what a rival's save does meanwhile is the point
    return slow


similar_index.save_index = together(similar_index.save_index)
index_store._put_bytes = slowly(index_store._put_bytes)  # a generation's data files
store._write_synced = slowly(store._write_synced)  # a local temporary manifest
options = StorageOptions(endpoint_url=endpoint or None)
print(",".join(similar(root, clip, 2, options)["clip_id"].to_pylist()))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "crowd_size"),
    [("local", 8), pytest.param("s3", 8, marks=pytest.mark.trials)],  # moto: 40 to 75 s on 2 cores
)
def test_concurrent_lookups_of_a_stale_index_all_answer_and_leave_it_whole(
    kind, crowd_size, request, tmp_path
):
    """A run committed since the similar index was saved; then `similar` processes, let go at
    the same instant, each refresh and save it. Every one answers (a save once deleted
    another's temporary manifest: "No such file ... index.json.<tmp> -> index.json", exit 1;
    or the generation another's manifest was about to name: "not in the clips view"), and
    afterwards the manifest names files that exist, no temporary file is left, and the index
    is up to date and answers."""
    import os
    import subprocess
    import sys

    from pipeline.core.storage import filesystem, join, strip_scheme
    from pipeline.output.index_store import INDEX_DIR, MANIFEST, snapshot_digest
    from pipeline.output.similar_index import _saved_for_reading
    from tests.jobs.cli_process import ROOT

    server = [request.getfixturevalue(f) for f in ("s3_client", "s3_endpoint") if kind == "s3"]
    root, options = new_output(kind, tmp_path, *(server or [None, None]))
    _commit_run(root, options, "r1", ["a", "b", "c"], [0, 30, 45], 0)
    assert similar(root, "id-a:0", 1, options)["clip_id"].to_pylist() == ["id-b:0"]
    _commit_run(root, options, "r2", ["b"], [90], 5)  # the saved index is stale now
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    args = [root, "id-a:0", str(meeting), options.endpoint_url or "", str(crowd_size)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    crowd = [
        subprocess.Popen([sys.executable, "-c", LOOKUP, *args, str(n)], env=env, **pipes)
        for n in range(crowd_size)
    ]
    answers = [p.communicate(timeout=300) for p in crowd]
    codes = [p.returncode for p in crowd]
    assert [(c, e.strip()[-400:]) for c, (_, e) in zip(codes, answers, strict=True) if c] == []
    assert [out.strip() for out, _ in answers] == ["id-c:0,id-b:0"] * crowd_size
    assert len(list(meeting.iterdir())) == crowd_size  # every one refreshed and saved
    fs = filesystem(root, options)
    (folder,) = fs.ls(strip_scheme(join(root, INDEX_DIR)), detail=False)
    with fs.open(f"{folder}/{MANIFEST}", "rb") as fh:
        manifest = json.loads(fh.read())
    files = {p.rsplit("/", 1)[-1] for p in fs.ls(folder, detail=False)}
    g = manifest["generation"]
    assert {f"{g}.index", f"{g}.slots.parquet", MANIFEST} <= files
    assert [f for f in files if f.endswith(".tmp")] == []
    (saved,) = _saved_for_reading(root, options)
    assert saved.snapshot == snapshot_digest(root, options)
    found = similar(root, "id-a:0", 2, options)
    assert found["clip_id"].to_pylist() == ["id-c:0", "id-b:0"]


def test_a_reader_whose_generation_a_rival_save_dropped_reads_the_manifest_again(output):
    """A reader reads `index.json`, then a rival's save replaces it and drops the generation
    it named before the reader opens its files: the reader reads the manifest again and gets
    the rival's index, never an empty one."""
    from pipeline.output import index_store
    from pipeline.output.similar_index import DIM, SLOTS

    root, options = output
    _commit_run(root, options, "r1", ["a", "b"], [0, 30], 0)
    similar(root, "id-a:0", 1, options)  # saves the index
    (name,) = index_store.saved_names(root, "similar-", options)
    rival = index_store.load_index(root, name, DIM, SLOTS, options)
    dropped = rival.generation
    read = index_store._read_generation

    def a_save_comes_first(fs, folder, generation, *rest):
        if generation == dropped:
            index_store.save_index(root, rival, options)  # drops `dropped`, which it loaded
        return read(fs, folder, generation, *rest)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(index_store, "_read_generation", a_save_comes_first)
        found = index_store.load_index(root, name, DIM, SLOTS, options)
    assert rival.generation != dropped
    assert (found.generation, found.slots.num_rows) == (rival.generation, 2)


def test_a_save_drops_old_strays_and_leaves_young_ones(tmp_path):
    """Files no manifest names: a killed writer's generation and temporary manifest an hour
    old are removed by the next save; a young one (maybe a save in progress) stays."""
    import os
    import time

    from pipeline.output.index_store import STRAY_AGE_S, load_index, save_index, saved_names
    from pipeline.output.similar_index import DIM, SLOTS

    root, options = new_output("local", tmp_path, None, None)
    _commit_run(root, options, "r1", ["a", "b"], [0, 30], 0)
    similar(root, "id-a:0", 1, options)
    (name,) = saved_names(root, "similar-", options)
    folder = tmp_path / "out" / "_index" / name
    old = [folder / "0123456789ab.index", folder / "index.json.deadbeef.tmp"]
    young = folder / "ba9876543210.slots.parquet"
    for path in [*old, young]:
        path.write_bytes(b"stray")
    for path in old:
        then = time.time() - 2 * STRAY_AGE_S
        os.utime(path, (then, then))
    stored = load_index(root, name, DIM, SLOTS, options)
    save_index(root, stored, options)
    g = stored.generation
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted([f"{g}.index", f"{g}.slots.parquet", "index.json", young.name])
