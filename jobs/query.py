"""SQL over a clipnote output: DuckDB on the committed Parquet, streamed, local or S3.

`clipnote query OUTPUT "SQL"` and the Python API below see three views, built by the one
reading path (`pipeline.output.reading.register_views`): `clips` (each clip's latest committed
annotation, once), `clips_all` (every committed row, with its run) and `runs` (commit records).
Files that no commit record names are never read.

Why this shape:
- S3 goes through an fsspec filesystem registered with DuckDB, so no DuckDB extension is
  downloaded at run time (clusters and CI often have no internet) and any endpoint works
  (`StorageOptions.endpoint_url`: MinIO, Ceph, R2, a test server).
- Results stream: DuckDB hands back Arrow record batches and every writer here writes them one
  at a time, so a query over millions of rows needs memory for a batch, not for the result.
  DuckDB spills what it must hold (sorts, the `clips` view's windows) to a temp directory.
- A mistake in the SQL is the user's: `QueryError` carries DuckDB's own message (which says
  where the mistake is) and the command exits 2.
- Read-only by default: one statement, a query (`SELECT`, `WITH`, `DESCRIBE`, `EXPLAIN`...),
  never `COPY`, `ATTACH`, `INSTALL` or `SET`; DuckDB's file access is limited to the output's
  own folder (`allowed_directories` with `enable_external_access` off, then the configuration
  locked), so `read_csv('/etc/passwd')` is refused. `allow_files=True` (`--allow-files`) lifts
  the folder limit for people who join their own files; the rest stays.

Python:
    con = connect("s3://bucket/out", StorageOptions(endpoint_url=...))
    rel = query(con, "SELECT clip_id, caption FROM clips WHERE list_contains(tags, 'dog')")
    table = rel.to_arrow_table()          # or query_arrow(...), or iterate record_batches(rel)
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from typing import IO, Any, Literal

import duckdb
import pyarrow as pa

from jobs.query_writers import (
    TABLE_ROWS,
    write_csv,
    write_json_lines,
    write_parquet,
    write_table,
)
from pipeline.core.errors import BadRequest, LocationNotFound
from pipeline.core.storage import StorageOptions, filesystem, is_remote, strip_scheme
from pipeline.output.views import register_views

Format = Literal["table", "json", "csv", "parquet"]
FORMATS: tuple[str, ...] = ("table", "json", "csv", "parquet")
BATCH_ROWS = 8192
VIEWS = ("clips", "clips_all", "runs")


class QueryError(BadRequest):
    """The SQL is wrong (syntax, unknown column or view, bad cast): DuckDB's message."""


# DuckDB errors that mean "the query is wrong", as opposed to "reading the data failed".
_USER_ERRORS = tuple(
    getattr(duckdb, name)
    for name in (
        "ParserException",
        "BinderException",
        "CatalogException",
        "ConversionException",
        "InvalidInputException",
        "SyntaxException",
        "NotImplementedException",
        "OutOfRangeException",
        "TypeMismatchException",
        "ConstraintException",
        "DataError",
        "ProgrammingError",
    )
    if hasattr(duckdb, name)
)


@contextlib.contextmanager
def sql_errors() -> Iterator[None]:
    """DuckDB's user-facing errors as `QueryError` (same message), anything else unchanged."""
    try:
        yield
    except duckdb.IOException:
        raise
    except duckdb.PermissionException as err:
        raise QueryError(
            f"{str(err).strip()} (clipnote reads only the output's own files; --allow-files "
            "lifts that)"
        ) from err
    except _USER_ERRORS as err:
        raise QueryError(str(err).strip()) from err


def connect(
    output: str,
    options: StorageOptions | None = None,
    *,
    memory_limit: str | None = None,
    temp_directory: str | None = None,
    threads: int | None = None,
    allow_files: bool = False,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the `clips`, `clips_all` and `runs` views of `output`.

    The views are a snapshot of what was committed when this ran; connect again to see later
    commits. `memory_limit` (e.g. "512MB") bounds what DuckDB holds before spilling to
    `temp_directory` (a fresh temp dir by default, removed with the connection). Files outside
    `output` cannot be read unless `allow_files`; the configuration is locked either way.
    """
    own_temp = None if temp_directory else tempfile.mkdtemp(prefix="clipnote-duckdb-")
    config: dict[str, Any] = {
        "temp_directory": temp_directory or own_temp,
        # no extension is installed or loaded behind the user's back: S3 goes through fsspec
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
    }
    if memory_limit:
        config["memory_limit"] = memory_limit
    if threads:
        config["threads"] = threads
    con = duckdb.connect(":memory:", config=config)
    if own_temp is not None:  # each query once left an empty folder behind
        weakref.finalize(con, shutil.rmtree, own_temp, ignore_errors=True)
    con.execute("SET enable_progress_bar = false")  # it writes to stdout, where results go
    snap = register_views(con, output, options)
    if not snap.runs and not snap.chunks:
        try:
            require_output(snap.output, options)
        except LocationNotFound:
            con.close()
            raise
    if not allow_files:
        root = snap.output.rstrip("/") + "/"
        con.execute("SET allowed_directories = ?", [[root]])
        con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def require_output(output: str, options: StorageOptions | None = None) -> None:
    """`LocationNotFound` (exit 2) unless `output` holds clipnote output (its `_runs/` folder,
    even with nothing committed yet): a mistyped path, or the input given for the output, once
    answered "0 rows", "no committed runs" or an empty report, and exit 0."""
    from pipeline.output.layout import RUNS_DIR

    root = output.rstrip("/")
    fs = filesystem(root, options)
    try:
        fs.ls(strip_scheme(f"{root}/{RUNS_DIR}"), detail=False)
        return
    except FileNotFoundError:
        pass
    if not is_remote(root) and not fs.isdir(root):
        raise LocationNotFound(f"output: no such folder: {root}")
    raise LocationNotFound(f"output: no clipnote output in {root} (no {RUNS_DIR}/ folder)")


_READ_ONLY = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def query(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation | None:
    """A lazy relation for `sql` (None for statements that return nothing); `QueryError` if
    DuckDB refuses it."""
    if not sql.strip():
        raise QueryError("the query is empty")
    with sql_errors():
        statements = duckdb.extract_statements(sql)
    if len(statements) != 1:
        raise QueryError(f"one statement at a time, got {len(statements)}")
    if statements[0].type not in _READ_ONLY:
        kind = statements[0].type.name
        raise QueryError(f"{kind}: clipnote query only reads (SELECT, WITH, DESCRIBE, EXPLAIN)")
    with sql_errors():
        return con.sql(sql)


def record_batches(
    relation: duckdb.DuckDBPyRelation | None, batch_rows: int = BATCH_ROWS
) -> pa.RecordBatchReader:
    """The result as a stream of Arrow record batches (DuckDB computes them as it goes)."""
    if relation is None:
        return pa.RecordBatchReader.from_batches(pa.schema([]), [])
    with sql_errors():
        return relation.to_arrow_reader(batch_rows)


def iter_batches(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    """Batches of `reader`; errors DuckDB raises while computing them become `QueryError`."""
    while True:
        with sql_errors():
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
        yield batch


def query_arrow(output: str, sql: str, options: StorageOptions | None = None) -> pa.Table:
    """The whole result of `sql` over `output` as one Arrow table (small results)."""
    reader = record_batches(query(connect(output, options), sql))
    return pa.Table.from_batches(list(iter_batches(reader)), schema=reader.schema)


def write_result(
    reader: pa.RecordBatchReader,
    fmt: Format,
    out: str | None,
    options: StorageOptions | None = None,
    console: Any = None,
    max_rows: int = TABLE_ROWS,
) -> int:
    """Stream `reader` in `fmt` to `out` (a local path or `s3://` URI; None: stdout)."""
    if fmt not in FORMATS:
        raise QueryError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    batches = iter_batches(reader)
    if fmt == "table" and out is None:
        from rich.console import Console

        return write_table(batches, reader.schema, console or Console(), max_rows)
    if out is None:
        if fmt == "parquet":
            raise QueryError("--format parquet needs --out FILE")
        import sys

        if fmt == "json":
            return write_json_lines(batches, sys.stdout)
        sys.stdout.flush()
        return write_csv(batches, reader.schema, sys.stdout.buffer)
    with _open_out(out, options) as fh:
        if fmt == "parquet":
            return write_parquet(batches, reader.schema, fh)
        if fmt == "csv":
            return write_csv(batches, reader.schema, fh)
        import io

        text = io.TextIOWrapper(fh, encoding="utf-8", newline="\n")
        try:
            if fmt == "json":
                return write_json_lines(batches, text)
            from rich.console import Console

            return write_table(batches, reader.schema, Console(file=text, width=200), max_rows)
        finally:
            text.flush()
            text.detach()


@contextlib.contextmanager
def _open_out(out: str, options: StorageOptions | None) -> Iterator[IO[bytes]]:
    fs = filesystem(out, options)
    path = strip_scheme(out)
    if not is_remote(out):
        import os

        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
    with fs.open(path, "wb") as fh:
        yield fh


def run_query(
    output: str,
    sql: str,
    fmt: Format = "table",
    out: str | None = None,
    options: StorageOptions | None = None,
    console: Any = None,
    memory_limit: str | None = None,
    allow_files: bool = False,
) -> int:
    """What `clipnote query` does: connect, run, stream the result out; rows written."""
    if fmt not in FORMATS:
        raise QueryError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "parquet" and out is None:
        raise QueryError("--format parquet needs --out FILE")
    con = connect(output, options, memory_limit=memory_limit, allow_files=allow_files)
    try:
        reader = record_batches(query(con, sql))
        return write_result(reader, fmt, out, options, console)
    finally:
        con.close()
