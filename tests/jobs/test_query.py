"""`clipnote query`: SQL over a real pipeline's committed output in S3 (moto on loopback).

The output comes from `results_world` (tests/jobs/conftest.py): the toy model captioned and
tagged toy-world videos whose truth is known, twice for two of them, plus a Parquet file no
commit record names. Expected rows come from that truth and from what was written.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.query import QueryError, connect, query, query_arrow, record_batches
from pipeline.core.storage import StorageOptions
from tests.jobs.cli_process import Ran, clipnote_here, run_clipnote

pytestmark = pytest.mark.slow


def _sql(world, sql: str) -> list[dict]:
    return query_arrow(world.output, sql, StorageOptions(endpoint_url=world.endpoint)).to_pylist()


def _clipnote(world, *args: str) -> Ran:
    """The CLI in this interpreter: what a command prints and exits with does not depend on
    the process around it, and a fresh one costs about a second here (an import of pyarrow,
    DuckDB and boto3). The temporary-folder test below keeps a fresh process (its TMPDIR)."""
    return clipnote_here(*args, cwd=Path.cwd())


def _query_cli(world, sql: str, *extra: str) -> Ran:
    return _clipnote(world, "query", world.output, sql, "--endpoint-url", world.endpoint, *extra)


def test_tag_filter_gives_the_clips_that_show_it(results_world):
    world = results_world
    for tag in ("red", "circle", "moving up", "still"):
        rows = _sql(world, f"SELECT video_uri FROM clips WHERE list_contains(tags, '{tag}')")
        expected = {uri for uri, clip in world.truth.items() if tag in clip.tags}
        assert sorted(r["video_uri"] for r in rows) == sorted(expected), tag


def test_tag_scores_are_thresholdable(results_world):
    rows = _sql(
        results_world,
        "SELECT video_uri, s.tag AS tag, s.score AS score "
        "FROM (SELECT video_uri, unnest(tag_scores) AS s FROM clips WHERE status = 'ok')",
    )
    assert rows
    for row in rows:
        truth = results_world.truth[row["video_uri"]]
        assert (row["score"] >= 0.5) == (row["tag"] in truth.tags), row


def test_caption_text_search(results_world):
    world = results_world
    rows = _sql(world, "SELECT video_uri FROM clips WHERE caption ILIKE '%left to right%'")
    expected = {uri for uri, clip in world.truth.items() if clip.spec.motion == "right"}
    assert {r["video_uri"] for r in rows} == expected
    assert len(rows) == len(expected)


def test_time_range(results_world):
    world = results_world
    rows = _sql(world, "SELECT video_uri, end_s FROM clips WHERE start_s = 0 AND end_s > 3")
    expected = {uri for uri, seconds in world.duration_s.items() if seconds > 3}
    assert {r["video_uri"] for r in rows} == expected and expected
    assert all(r["end_s"] == pytest.approx(4.0, abs=0.05) for r in rows)


def test_each_clip_once_in_clips_and_its_history_in_clips_all(results_world):
    world = results_world
    latest = _sql(world, "SELECT video_uri, clip_index, run_id, status FROM clips")
    keys = [(r["video_uri"], r["clip_index"]) for r in latest]
    assert len(keys) == len(set(keys))
    assert {r["video_uri"] for r in latest} == set(world.truth) | {world.broken}
    assert {r["run_id"] for r in latest if r["video_uri"] in world.rerun} == {"night-2"}
    history = _sql(
        world, "SELECT video_uri, count(*) AS n, list(run_id ORDER BY run_id) AS runs "
        "FROM clips_all GROUP BY video_uri"
    )  # fmt: skip
    by_uri = {r["video_uri"]: r for r in history}
    for uri in world.rerun:
        assert by_uri[uri]["runs"] == ["night-1", "night-2"]
    assert all(r["n"] == 1 for uri, r in by_uri.items() if uri not in world.rerun)
    broken = [r for r in latest if r["video_uri"] == world.broken]
    assert [r["status"] for r in broken] == ["decode_error"]


def test_uncommitted_files_never_show(results_world):
    world = results_world
    # 7 videos + the broken one in night-1, 2 videos again in night-2; the ghost file (a copy
    # of a night-1 file, with night-1 rows inside) would add rows if it were read
    (total,) = _sql(world, "SELECT count(*) AS n FROM clips_all")
    assert total["n"] == len(world.truth) + 1 + len(world.rerun)
    runs = _sql(world, "SELECT run_id, kind FROM runs ORDER BY committed_at")
    assert [r["run_id"] for r in runs] == ["night-1", "night-2"]
    assert all(r["kind"] == "run" for r in runs)


def test_python_api_relation_and_arrow(results_world):
    world = results_world
    con = connect(world.output, StorageOptions(endpoint_url=world.endpoint))
    rel = query(con, "SELECT clip_id, caption FROM clips ORDER BY clip_id")
    assert isinstance(rel, duckdb.DuckDBPyRelation)
    table = rel.to_arrow_table()
    assert isinstance(table, pa.Table) and table.num_rows == len(world.truth) + 1
    reader = record_batches(query(con, "SELECT clip_id FROM clips_all"), batch_rows=3)
    sizes = [batch.num_rows for batch in reader]
    assert sum(sizes) == len(world.truth) + 1 + len(world.rerun) and max(sizes) <= 3
    with pytest.raises(QueryError, match="Parser Error"):
        query(con, "SELEC 1")


def test_cli_formats(results_world, tmp_path):
    world = results_world
    sql = (
        "SELECT clip_id, video_uri, caption, tags, tag_scores, thumbnail, start_s FROM clips "
        "WHERE status = 'ok' ORDER BY clip_id"
    )
    truth_caps = {uri: clip.caption for uri, clip in world.truth.items()}

    done = _query_cli(world, sql, "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r["video_uri"]: r["caption"] for r in rows} == truth_caps
    assert all(isinstance(r["tags"], list) and r["tag_scores"][0]["tag"] for r in rows)

    done = _query_cli(world, sql, "--format", "csv")
    assert done.returncode == 0, done.stderr
    parsed = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["clip_id"] for r in parsed] == [r["clip_id"] for r in rows]
    assert json.loads(parsed[0]["tags"]) == rows[0]["tags"]

    out = tmp_path / "result.parquet"
    done = _query_cli(world, sql, "--format", "parquet", "--out", str(out))
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out)
    assert table.column("clip_id").to_pylist() == [r["clip_id"] for r in rows]
    assert all(t[:2] == b"\xff\xd8" for t in table.column("thumbnail").to_pylist())  # JPEG

    done = _query_cli(world, "SELECT caption FROM clips WHERE status = 'ok'")
    assert done.returncode == 0, done.stderr
    assert next(iter(truth_caps.values())) in done.stdout
    assert f"{len(truth_caps)} rows" in done.stdout


@pytest.mark.parametrize(
    "sql,words",
    [
        ("SELEC * FROM clips", "Parser Error"),
        ("SELECT no_such_column FROM clips", "no_such_column"),
        ("SELECT * FROM no_such_view", "no_such_view"),
        ("SELECT CAST(caption AS INTEGER) FROM clips WHERE caption IS NOT NULL", "Conversion"),
    ],
)
def test_bad_sql_is_a_clean_message_and_exit_2(results_world, sql, words):
    done = _query_cli(results_world, sql)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert words in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.startswith("clipnote: ")


def test_parquet_to_the_terminal_is_refused(results_world):
    done = _query_cli(results_world, "SELECT 1", "--format", "parquet")
    assert done.returncode == 2 and "--out" in done.stderr


def test_query_writes_to_s3(results_world):
    import boto3

    world = results_world
    target = "s3://results/exports/red.parquet"
    done = _query_cli(
        world, "SELECT clip_id FROM clips WHERE list_contains(tags, 'red')",
        "--format", "parquet", "--out", target,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    client = boto3.client("s3", endpoint_url=world.endpoint, region_name="us-east-1")
    body = client.get_object(Bucket="results", Key="exports/red.parquet")["Body"].read()
    got = pq.read_table(io.BytesIO(body)).column("clip_id").to_pylist()
    assert len(got) == sum("red" in c.tags for c in world.truth.values())


def test_queries_stream_rather_than_load_the_rows(tmp_path):
    """300,000 committed rows (0.6 GB, a 2 KB thumbnail each) exported in full from `clips` and
    `clips_all`: the process's peak memory grows by far less than the data over a trivial
    query's (rows are streamed batch by batch, the `clips` rule runs on key columns only)."""
    from benchmarks.query_streaming import measure, write_output

    output = tmp_path / "output"
    size = write_output(output, 300_000)
    assert size > 500_000_000
    _, _, baseline = measure(output, "SELECT 1", tmp_path / "one.parquet")
    for sql in ("SELECT * FROM clips_all", "SELECT * FROM clips"):
        rows, _, peak = measure(output, sql, tmp_path / "all.parquet")
        assert rows == 300_000
        assert peak - baseline < size / 2, (sql, peak, baseline, size)


# -- issue 18, case 8: read-only by default ----------------------------------------------------


def _cli(*args: str, cwd) -> Ran:
    return clipnote_here(*args, cwd=cwd)


@pytest.fixture()
def edge_world(tmp_path):
    from tests.jobs.edges import edge_output

    secret = tmp_path / "secret.csv"
    secret.write_text("who,what\nroot,hunter2\n")
    return edge_output(str(tmp_path / "out")), secret


def test_query_and_report_touch_no_file_but_the_outputs_by_default(edge_world, tmp_path):
    """Case 8: `read_csv('/etc/passwd')`, `glob`, `COPY ... TO`, `ATTACH` and `INSTALL` all
    worked from `clipnote query`, and `report --where` was pasted into the SQL."""
    output, secret = edge_world
    wrote = tmp_path / "wrote.csv"
    refused = [
        f"SELECT * FROM read_csv('{secret}')",
        f"SELECT * FROM read_text('{secret}')",
        f"SELECT * FROM glob('{tmp_path}/*')",
        f"COPY (SELECT 1) TO '{wrote}'",
        f"ATTACH '{tmp_path}/x.db'",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        f"SELECT 1; COPY (SELECT 1) TO '{wrote}'",
    ]
    for sql in refused:
        done = _cli("query", output, sql, cwd=tmp_path)
        assert done.returncode == 2, (sql, done.stdout, done.stderr)
        assert done.stderr.startswith("clipnote: ") and "Traceback" not in done.stderr, sql
        assert "hunter2" not in done.stdout + done.stderr
    assert not wrote.exists() and not (tmp_path / "x.db").exists()

    ok = _cli("query", output, "SELECT count(*) AS n FROM clips", "--format", "json", cwd=tmp_path)
    assert ok.returncode == 0 and json.loads(ok.stdout) == {"n": 2}, ok.stderr
    joined = _cli(
        "query", output, f"SELECT what FROM read_csv('{secret}')", "--format", "json",
        "--allow-files", cwd=tmp_path,
    )  # fmt: skip
    assert joined.returncode == 0 and json.loads(joined.stdout) == {"what": "hunter2"}
    still = _cli("query", output, f"COPY (SELECT 1) TO '{wrote}'", "--allow-files", cwd=tmp_path)
    assert still.returncode == 2 and not wrote.exists()  # --allow-files reads, never writes

    page = tmp_path / "r.html"
    pasted = f"1=1) ; COPY (SELECT 1) TO '{wrote}' ; SELECT (1"
    done = _cli("report", output, "--out", str(page), "--where", pasted, cwd=tmp_path)
    assert done.returncode == 2 and not wrote.exists(), done.stderr
    done = _cli("report", output, "--out", str(page), "--where", "clip_index = 0", cwd=tmp_path)
    assert done.returncode == 0 and "2 of 2 clips" in done.stdout, done.stderr


def test_a_query_leaves_no_temporary_folder(edge_world, tmp_path):
    output, _secret = edge_world
    temp = tmp_path / "tmp"
    temp.mkdir()
    done = run_clipnote("query", output, "SELECT count(*) FROM clips_all", cwd=tmp_path,
                        TMPDIR=str(temp))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in temp.iterdir()) == []
