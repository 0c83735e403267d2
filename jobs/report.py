"""What a person sees at the end of a run: counts by status, coverage, speed, the output."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from pipeline.core.status import STATUS_OK
from pipeline.run import RunSummary


def coverage_line(summary: RunSummary) -> str:
    """Covered seconds out of video seconds, as the run's write results added them up."""
    covered, total = summary.covered_s, summary.video_s
    share = f" ({covered / total:.0%})" if total > 0 else ""
    return f"{covered:.1f} of {total:.1f} video seconds{share}"


def print_summary(summary: RunSummary, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"clipnote run {summary.run_id}", show_header=False)
    table.add_row("videos", str(summary.videos))
    table.add_row(f"clips {STATUS_OK}", str(summary.counts.get(STATUS_OK, 0)))
    for status, count in sorted(summary.counts.items()):
        if status != STATUS_OK:
            table.add_row(f"clips {status}", str(count))
    table.add_row("covered", coverage_line(summary))
    table.add_row("seconds", f"{summary.seconds:.1f}")
    table.add_row("clips/s", f"{summary.clips_per_s:.2f}")
    table.add_row("output", summary.output)
    table.add_row("commit record", summary.commit_record)
    console.print(table)
