"""Writing a query's result, one Arrow batch at a time: JSON lines, CSV, Parquet, or a
terminal view of the first rows (`jobs.terminal`: a table when it fits whole, else one block
per row). Split from `jobs.query`, which runs the query."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

import pyarrow as pa

TABLE_ROWS = 40
"""Rows the terminal view shows; the rest are counted, not printed."""


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _plain_columns(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Columns CSV can hold: lists and structs as JSON text, binary as base64."""
    arrays, changed = [], False
    for field, column in zip(batch.schema, batch.columns, strict=True):
        kind = field.type
        if pa.types.is_nested(kind):
            text = [
                None if v is None else json.dumps(v, default=_json_value, ensure_ascii=False)
                for v in column.to_pylist()
            ]
            arrays.append(pa.array(text, pa.string()))
            changed = True
        elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            text = [None if v is None else _json_value(v) for v in column.to_pylist()]
            arrays.append(pa.array(text, pa.string()))
            changed = True
        else:
            arrays.append(column)
    if not changed:
        return batch
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def write_json_lines(batches: Iterator[pa.RecordBatch], out: IO[str]) -> int:
    """One JSON object per row and line (binary as base64, times as ISO 8601); rows written."""
    rows = 0
    for batch in batches:
        for row in batch.to_pylist():
            out.write(json.dumps(row, default=_json_value, ensure_ascii=False))
            out.write("\n")
        rows += batch.num_rows
    return rows


def write_csv(batches: Iterator[pa.RecordBatch], schema: pa.Schema, out: IO[bytes]) -> int:
    """CSV with a header; nested columns as JSON text, binary as base64; rows written."""
    import pyarrow.csv as pacsv

    writer = None
    rows = 0
    for batch in batches:
        plain = _plain_columns(batch)
        if writer is None:
            writer = pacsv.CSVWriter(out, plain.schema)
        writer.write_batch(plain)
        rows += batch.num_rows
    if writer is None:  # no rows: still a header
        empty = _plain_columns(pa.RecordBatch.from_pylist([], schema=schema))
        writer = pacsv.CSVWriter(out, empty.schema)
    writer.close()
    return rows


def write_parquet(batches: Iterator[pa.RecordBatch], schema: pa.Schema, out: IO[bytes]) -> int:
    """Parquet (zstd), written one batch at a time; rows written."""
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


LIST_ITEMS = 16
"""A longer list (an embedding) shows its first items and its length on a terminal."""


def _cell(value: Any) -> str:
    """A value as a person reads it: text and identifiers whole (`jobs.terminal` wraps them
    instead), binary as its size, a long list (an embedding) as its first items and length."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, list) and len(value) > LIST_ITEMS:
        head = json.dumps(value[: LIST_ITEMS // 2], default=_json_value, ensure_ascii=False)
        return f"{head[:-1]}, … {len(value)} items]"
    if isinstance(value, list | dict):
        return json.dumps(value, default=_json_value, ensure_ascii=False)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_table(
    batches: Iterator[pa.RecordBatch], schema: pa.Schema, console: Any, max_rows: int = TABLE_ROWS
) -> int:
    """The first `max_rows` rows, the rest counted (streamed): a table when every value fits
    whole in the console's width, else one block per row (`jobs.terminal`)."""
    from jobs.terminal import print_rows

    shown: list[list[str]] = []
    rows = 0
    for batch in batches:
        if rows < max_rows:
            for row in batch.slice(0, max_rows - rows).to_pylist():
                shown.append([_cell(row[name]) for name in schema.names])
        rows += batch.num_rows
    print_rows(console, schema.names, shown)
    more = f" (first {max_rows} shown; --format csv/json/parquet --out FILE for all)"
    console.print(f"{rows} row{'s' if rows != 1 else ''}" + (more if rows > max_rows else ""))
    return rows
