"""`clipnote similar OUTPUT CLIP_ID`: the clips nearest to one clip by embedding."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from jobs.query import QueryError, write_result
from pipeline.core.storage import StorageOptions
from pipeline.output.similar import similar

FORMATS = ("table", "json", "csv")


def run_similar(
    output: str,
    clip_id: str,
    k: int = 10,
    fmt: str = "table",
    options: StorageOptions | None = None,
    console: Any = None,
    warn: Callable[[str], None] | None = None,
) -> int:
    """Print the `k` nearest clips (clip_id, similarity, video, span, caption); rows printed.
    An unknown clip, or one without an embedding, is a `QueryError` (exit 2). A stale index
    refreshed but not saved (read-only credentials or output) still answers: `warn` gets
    the one line saying so (by default `clipnote: warning: ...` on stderr)."""
    if fmt not in FORMATS:
        raise QueryError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if k < 1:
        raise QueryError(f"--k: expected a positive number, got {k}")
    try:
        table = similar(output, clip_id, k, options, warn or _warn)
    except LookupError as err:
        raise QueryError(str(err.args[0])) from err
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    return write_result(reader, fmt, None, options, console)  # type: ignore[arg-type]


def _warn(line: str) -> None:
    print(f"clipnote: warning: {line}", file=sys.stderr)
