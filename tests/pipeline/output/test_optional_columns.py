"""Outputs written before `embedding`, `embedding_key` and `footage` existed keep working:
every reader (Python and SQL, local and S3) shows those columns as nulls, alone or mixed with
files that have them."""

from __future__ import annotations

import io

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.storage import filesystem, is_remote
from pipeline.output.chunks import Chunk
from pipeline.output.commit import RunCommitter
from pipeline.output.part_writer import VIDEO_ROWS, write_part
from pipeline.output.reading import read_all, read_latest
from pipeline.output.records import RunDetails
from pipeline.output.schema import CLIPS_SCHEMA, OPTIONAL_COLUMNS
from pipeline.output.store import _put_bytes
from pipeline.output.views import register_views
from tests.pipeline.output.parts import DAY, clip_rows


def _with_vectors(table: pa.Table, value: float) -> pa.Table:
    """Every row's embedding is `value` in its first place (so rows can be told apart)."""
    n = table.num_rows
    embedding = np.zeros((n, 128), np.float16)
    embedding[:, 0] = value
    for name, column in (
        ("embedding", pa.FixedSizeListArray.from_arrays(pa.array(embedding.ravel()), 128)),
        ("embedding_key", pa.array(["m@k"] * n)),
        ("footage", pa.nulls(n, CLIPS_SCHEMA.field("footage").type)),
    ):
        index = table.column_names.index(name)
        table = table.set_column(index, name, column)
    return table


def _commit(output: str, options, run_id: str, table: pa.Table, *, old: bool) -> None:
    """One run of one part: `old` writes it as an earlier release did, without the columns."""
    committer = RunCommitter(output, run_id, "a1", DAY, options)
    committer.on_write_start()
    if old:
        data = table.drop_columns([VIDEO_ROWS, *OPTIONAL_COLUMNS])
        uri = committer.target.new_part_uri()
        buffer = io.BytesIO()
        pq.write_table(data, buffer)
        _put_bytes(filesystem(output, options), uri, buffer.getvalue(), remote=is_remote(uri))
    else:
        uri = write_part(table, committer.target).file
    videos = sorted(set(table["video_uri"].to_pylist()))
    committer.commit_chunk(Chunk([uri], table.num_rows, {"ok": table.num_rows}, videos))
    committer.on_write_complete(RunDetails())


def test_an_old_output_reads_with_null_vectors(output):
    root, options = output
    _commit(root, options, "old", clip_rows({"a": 2}, "old"), old=True)
    latest = read_latest(root, options)
    assert latest.schema == CLIPS_SCHEMA and latest.num_rows == 2
    for name in OPTIONAL_COLUMNS:
        assert latest[name].null_count == 2
    picked = read_latest(root, options, columns=["clip_id", "embedding"])
    assert picked.column_names == ["clip_id", "embedding"]
    assert picked["embedding"].to_pylist() == [None, None]
    con = duckdb.connect()
    register_views(con, root, options)
    rows = con.sql("SELECT clip_id, embedding, footage FROM clips ORDER BY clip_id").fetchall()
    assert rows == [("id-a:0", None, None), ("id-a:1", None, None)]


def test_old_and_new_files_mix(output):
    """Video a from an old release, video b re-annotated by a new one: both in `clips`, the new
    one with its embedding, in SQL and in Python."""
    root, options = output
    _commit(root, options, "old", clip_rows({"a": 1, "b": 1}, "old"), old=True)
    _commit(
        root, options, "new", _with_vectors(clip_rows({"b": 1}, "new", minute=5), 0.5), old=False
    )
    latest = read_latest(root, options, columns=["clip_id", "run_id", "embedding"])
    got = {r["clip_id"]: (r["run_id"], r["embedding"]) for r in latest.to_pylist()}
    assert got["id-a:0"] == ("old", None)
    assert got["id-b:0"][0] == "new" and got["id-b:0"][1][:2] == [0.5, 0.0]
    assert read_all(root, options)["embedding"].null_count == 2
    con = duckdb.connect()
    register_views(con, root, options)
    rows = con.sql(
        "SELECT clip_id, run_id, embedding[1], embedding_key FROM clips ORDER BY clip_id"
    ).fetchall()
    assert rows == [("id-a:0", "old", None, None), ("id-b:0", "new", 0.5, "m@k")]
