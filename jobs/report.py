"""What a person sees at the end of a run: counts by status, coverage, speed, the output.

Plain lines, not a boxed table: at 80 columns the table cut the commit record's path with
"…". Counts are `name  value` lines; each path is printed whole on a line of its own, so it can
be copied from any terminal.
"""

from __future__ import annotations

from rich.console import Console

from pipeline.core.status import STATUS_OK
from pipeline.run import RunSummary


def coverage_line(summary: RunSummary) -> str:
    """Covered seconds out of video seconds, as the run's write results added them up."""
    covered, total = summary.covered_s, summary.video_s
    share = f" ({covered / total:.0%})" if total > 0 else ""
    return f"{covered:.1f} of {total:.1f} video seconds{share}"


def summary_lines(summary: RunSummary, width: int) -> list[str]:
    """The summary as lines of at most `width` columns, but for the paths, which are whole."""
    from jobs.terminal import record_lines

    names = ["videos", f"clips {STATUS_OK}"]
    values = [str(summary.videos), str(summary.counts.get(STATUS_OK, 0))]
    for status, count in sorted(summary.counts.items()):
        if status != STATUS_OK:
            names.append(f"clips {status}")
            values.append(str(count))
    names += ["covered", "seconds", "clips/s"]
    values += [coverage_line(summary), f"{summary.seconds:.1f}", f"{summary.clips_per_s:.2f}"]
    return [
        f"clipnote run {summary.run_id}",
        *record_lines(names, values, width, indent="  "),
        "output:",
        summary.output,
        "commit record:",
        summary.commit_record,
    ]


def print_summary(summary: RunSummary, console: Console | None = None) -> None:
    console = console or Console()
    lines = summary_lines(summary, console.width)
    console.print("\n".join(lines), soft_wrap=True, markup=False, highlight=False)
