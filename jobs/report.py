"""What a person sees at the end of a run: counts by status, coverage, speed, the output."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.table import Table

from pipeline.coverage import coverage_seconds
from pipeline.run import RunSummary
from pipeline.storage import StorageOptions, filesystem, strip_scheme

_COVERAGE_COLUMNS = ["video_uri", "start_s", "end_s", "video_duration_s", "status"]


def _rows_of(files: list[str], options: StorageOptions | None) -> Iterator[dict[str, Any]]:
    """The coverage columns of the run's files, one file at a time."""
    import pyarrow.parquet as pq

    for uri in files:
        fs = filesystem(uri, options)
        with fs.open(strip_scheme(uri), "rb") as fh:
            yield from pq.read_table(fh, columns=_COVERAGE_COLUMNS).to_pylist()


def coverage_line(summary: RunSummary, options: StorageOptions | None = None) -> str:
    covered, total = coverage_seconds(_rows_of(summary.files, options))
    share = f" ({covered / total:.0%})" if total > 0 else ""
    return f"{covered:.1f} of {total:.1f} video seconds{share}"


def print_summary(
    summary: RunSummary, console: Console | None = None, options: StorageOptions | None = None
) -> None:
    console = console or Console()
    table = Table(title=f"clipnote run {summary.run_id}", show_header=False)
    table.add_row("videos", str(summary.videos))
    table.add_row("clips ok", str(summary.counts.get("ok", 0)))
    for status, count in sorted(summary.counts.items()):
        if status != "ok":
            table.add_row(f"clips {status}", str(count))
    table.add_row("covered", coverage_line(summary, options))
    table.add_row("seconds", f"{summary.seconds:.1f}")
    table.add_row("clips/s", f"{summary.clips_per_s:.2f}")
    table.add_row("output", summary.output)
    table.add_row("commit record", summary.commit_record)
    console.print(table)
