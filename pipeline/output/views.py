"""The SQL face of the committed output: the `clips`, `clips_all`, `runs` and `duplicates`
views that `clipnote query` registers in DuckDB, the `runs` table behind `runs`, and the
`similar_clips(clip_id, k := 10)` table macro (the nearest clips by embedding, exactly).

`clips` has one column more than the Parquet files: `duplicate_of`, the kept clip of the
footage group a clip belongs to (`clipnote dedup`; NULL for a kept clip and an undecided one).
`duplicates` holds every committed dedup decision of both modes (`pipeline.output.similar`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from pipeline.core.storage import StorageOptions, filesystem, is_remote
from pipeline.output.dedup_store import DEDUP_SCHEMA, MODES, decision_files
from pipeline.output.schema import CLIPS_SCHEMA
from pipeline.output.snapshot import Snapshot, snapshot

RUNS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("kind", pa.string()),  # "run": an attempt ended; "chunk": running or crashed
        ("attempt", pa.string()),
        ("run_date", pa.string()),
        ("committed_at", pa.string()),
        ("files", pa.int64()),
        ("rows", pa.int64()),
        ("videos", pa.int64()),
        ("counts", pa.string()),  # JSON object status -> rows
        ("seconds", pa.float64()),
        ("record", pa.string()),  # the whole record as JSON (config, timings, ...)
    ]
)


def runs_table(output: str, options: StorageOptions | None = None) -> pa.Table:
    """The `runs` view: one row per visible commit record, oldest first."""
    return runs_table_from(snapshot(output, options))


CLIPS_VIEW_SQL = """
CREATE OR REPLACE VIEW clips AS
WITH keyed AS (
    SELECT _file, _row, video_uri, clip_index, created_at, run_id,
        split_part(coalesce(fingerprint, ''), ':', 1) AS _work,
        clip_index < 0 AS _video_error
    FROM _clipnote_rows
), ranked AS (
    SELECT *,
        first_value(_work) OVER newest_of_video AS _latest_work,
        first_value(_video_error) OVER newest_of_video AS _latest_video_error
    FROM keyed
    WINDOW newest_of_video AS (
        PARTITION BY video_uri
        ORDER BY created_at DESC, coalesce(run_id, '') DESC, clip_index DESC
    )
), candidates AS (
    SELECT * FROM ranked
    WHERE _work = _latest_work AND _video_error = _latest_video_error
), numbered AS (
    SELECT _file, _row,
        row_number() OVER (
            PARTITION BY video_uri, clip_index
            ORDER BY created_at DESC, coalesce(run_id, '') DESC
        ) AS _rank
    FROM candidates
), winners AS (
    SELECT _file, _row FROM numbered WHERE _rank = 1
)
SELECT r.* EXCLUDE (_file, _row)
FROM _clipnote_rows AS r SEMI JOIN winners AS w ON r._file = w._file AND r._row = w._row
"""
"""`clips` over the `_clipnote_rows` view (`clips_all` plus each row's file and position): the
same rule as `latest_positions`. The rule runs on the key columns only and the winning rows are
then read by position, so DuckDB never holds whole rows (thumbnails) in its windows: a
`SELECT * FROM clips` over 1M rows (2 GB) peaks at 1.3 GB RSS instead of 3.7 GB
(benchmarks/query_streaming.py)."""


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def dedup_sql(files: Sequence[str]) -> list[str]:
    """`duplicates` over the committed decision files (`_clipnote_dedup_empty` when none),
    `clips` as `_clipnote_latest` plus `duplicate_of` from footage mode, and `similar`."""
    if files:
        listed = ", ".join(_sql_string(f) for f in files)
        source = f"SELECT * FROM read_parquet([{listed}], hive_partitioning = false)"
    else:
        source = "SELECT * FROM _clipnote_dedup_empty"
    return [
        f"CREATE OR REPLACE VIEW duplicates AS {source}",
        "CREATE OR REPLACE VIEW clips AS SELECT l.*, d.duplicate_of FROM _clipnote_latest AS l "
        "LEFT JOIN (SELECT clip_id, duplicate_of FROM duplicates WHERE mode = 'footage') AS d "
        "ON l.clip_id = d.clip_id",
        SIMILAR_MACRO_SQL,
    ]


SIMILAR_MACRO_SQL = """
CREATE OR REPLACE MACRO similar_clips(target, k := 10) AS TABLE
SELECT c.clip_id, ((list_cosine_similarity(c.embedding, t.embedding)
    + coalesce(nullif(list_cosine_similarity(c.footage, t.footage), 'NaN'::FLOAT), 0)) / 2
    )::FLOAT AS similarity,
    c.video_uri, c.start_s, c.end_s, c.caption
FROM clips AS c,
    (SELECT embedding, embedding_key, footage FROM clips WHERE clip_id = target) AS t
WHERE c.clip_id <> target AND c.embedding_key = t.embedding_key
ORDER BY similarity DESC, c.clip_id LIMIT k
"""
"""`SELECT * FROM similar_clips('<clip_id>', k := 5)`: what `clipnote similar` answers,
exactly, in SQL (a scan of `clips`). A footage fingerprint of zeros (a blank clip) has no
cosine (DuckDB says NaN): its footage term counts 0, as in `similar`."""


def views_sql(files: Sequence[str], latest: str = "clips") -> list[str]:
    """`CREATE VIEW` statements for `clips_all` and `clips` (named `latest`: `register_views`
    names it `_clipnote_latest` and adds `duplicate_of` on top) over these committed files.

    Paths are used as given (`s3://...` needs an fsspec filesystem registered with DuckDB,
    see `register_views`). Hive partitioning is off: the data's own `run_id` column is the
    truth (DuckDB would otherwise overwrite it with the `run_id=` folder name). With no
    files, `clips_all` reads `_clipnote_empty`, an empty table of the schema the caller
    registers (`register_views` does).
    """
    if files:
        listed = ", ".join(_sql_string(f) for f in files)
        names = ", ".join(f'"{name}"' for name in CLIPS_SCHEMA.names)
        # By name, and over the empty table too: files written before a column existed
        # (`OPTIONAL_COLUMNS`) show it as NULL, even when no file has it yet.
        source = (
            f"SELECT {names}, _file, _row FROM ("
            "SELECT * EXCLUDE (filename, file_row_number), filename AS _file, "
            f"file_row_number AS _row FROM read_parquet([{listed}], hive_partitioning = false, "
            "union_by_name = true, filename = true, file_row_number = true) "
            "UNION ALL BY NAME SELECT * FROM _clipnote_empty)"
        )
    else:
        source = "SELECT *, NULL::VARCHAR AS _file, NULL::BIGINT AS _row FROM _clipnote_empty"
    return [
        f"CREATE OR REPLACE VIEW _clipnote_rows AS {source}",
        "CREATE OR REPLACE VIEW clips_all AS SELECT * EXCLUDE (_file, _row) FROM _clipnote_rows",
        CLIPS_VIEW_SQL.replace("VIEW clips AS", f"VIEW {latest} AS"),
    ]


def duckdb_empty() -> pa.Table:
    """An empty `clips` table DuckDB can register: it has no float16, so the vector columns
    are float32 lists here (as DuckDB reads the Parquet float16 ones: `FLOAT[]`)."""
    fields = [
        pa.field(f.name, pa.list_(pa.float32()))
        if pa.types.is_fixed_size_list(f.type) and f.type.value_type == pa.float16()
        else f
        for f in CLIPS_SCHEMA
    ]
    return pa.schema(fields).empty_table()


def register_views(con: Any, output: str, options: StorageOptions | None = None) -> Snapshot:
    """Create `clips_all`, `clips` and `runs` in DuckDB connection `con` for `output`.

    For `s3://` outputs the s3fs filesystem is registered with DuckDB (fsspec), so no DuckDB
    extension is needed. Returns the snapshot the views were built from (a view is a
    snapshot: call again to see later commits).
    """
    snap = snapshot(output, options)
    if is_remote(output):
        con.register_filesystem(filesystem(output, options))
    con.register("_clipnote_empty", duckdb_empty())
    con.register("_clipnote_dedup_empty", DEDUP_SCHEMA.empty_table())
    con.register("_clipnote_runs", runs_table_from(snap))
    for statement in views_sql(snap.files, latest="_clipnote_latest"):
        con.execute(statement)
    dedup_files = [f for mode in MODES for f in decision_files(output, mode, options)]
    for statement in dedup_sql(dedup_files):
        con.execute(statement)
    con.execute("CREATE OR REPLACE VIEW runs AS SELECT * FROM _clipnote_runs")
    return snap


def runs_table_from(snap: Snapshot) -> pa.Table:
    rows = []
    for commit in snap.commits():
        rows.append(
            {
                "run_id": commit["run_id"],
                "kind": commit["kind"],
                "attempt": commit.get("attempt") or ",".join(commit.get("attempts", [])),
                "run_date": commit.get("run_date"),
                "committed_at": commit.get("committed_at"),
                "files": len(commit.get("files", [])),
                "rows": commit.get("rows"),
                "videos": commit.get("videos"),
                "counts": json.dumps(commit.get("counts", {}), sort_keys=True),
                "seconds": commit.get("seconds"),
                "record": json.dumps(commit, default=str, sort_keys=True),
            }
        )
    return pa.Table.from_pylist(rows, schema=RUNS_SCHEMA)
