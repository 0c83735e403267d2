"""Ray job entry point for the nightly run: `python -m jobs.nightly CONFIG [--date D] [options]`.

A night is the run id `nightly-YYYY-MM-DD` (unless the config names one): re-running it resumes
it, and videos whose work (same video, model weights, prompts, settings) is already committed,
by any earlier run, are skipped, so a finished night does no annotation the second time.
`--retry` (and `clipnote retry`) instead redoes only what the latest committed rows say failed.
An input URI may contain `{date}` (e.g. `s3://bucket/videos/{date}/`), replaced by the night.
A night that processed something then runs footage dedup (`clipnote dedup`), which decides only
the clips no dedup decided yet.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timezone

from rich.console import Console

from jobs.options import add_config_arguments, config_from_args
from pipeline.config import RunConfig
from pipeline.run import RunSummary, run_pipeline


def night_config(config: RunConfig, day: date) -> RunConfig:
    """The config of one night: its run id and `{date}` in the input filled in."""
    update = {"input": config.input.replace("{date}", day.isoformat())}
    if config.run_id is None:
        update["run_id"] = f"nightly-{day.isoformat()}"
    return config.model_copy(update=update)


def retry_config(config: RunConfig, now: datetime | None = None) -> RunConfig:
    now = now or datetime.now(timezone.utc)
    if config.run_id is not None:
        return config
    return config.model_copy(update={"run_id": f"retry-{now:%Y%m%dT%H%M%SZ}"})


def run_nightly(config: RunConfig, day: date | None = None, on_progress=None) -> RunSummary:
    day = day or datetime.now(timezone.utc).date()
    return run_pipeline(night_config(config, day), on_progress, mode="incremental", run_date=day)


def run_retry(config: RunConfig, on_progress=None) -> RunSummary:
    return run_pipeline(retry_config(config), on_progress, mode="retry")


def night_with_display(
    config: RunConfig, day: date | None, console: Console, verbose: bool = False
) -> RunSummary:
    """`run_nightly` with the progress display and the run summary (CLI and job alike)."""
    from jobs.progress import run_with_display

    day = day or datetime.now(timezone.utc).date()
    return run_with_display(
        night_config(config, day), console, verbose=verbose, mode="incremental", run_date=day
    )


def retry_with_display(config: RunConfig, console: Console, verbose: bool = False) -> RunSummary:
    """`run_retry` with the progress display and the run summary (CLI and job alike)."""
    from jobs.progress import run_with_display

    return run_with_display(retry_config(config), console, verbose=verbose, mode="retry")


def describe(summary: RunSummary) -> list[str]:
    """Lines a person reads: listed / skipped as done / processed, and what was committed."""
    skipped_as = "with nothing to retry" if summary.mode == "retry" else "skipped as done"
    lines = [
        f"run {summary.run_id}: listed {summary.videos} videos, {summary.skipped} "
        f"{skipped_as}, {summary.processed} processed"
    ]
    if summary.processed == 0:
        retrying = summary.mode == "retry"
        what = "no failed clips to retry" if retrying else "everything listed is done"
        lines.append(f"nothing to do: {what}, no annotation was run")
    else:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items())) or "no rows"
        lines.append(
            f"wrote {summary.clips} rows ({counts}) in {summary.chunks} chunks, "
            f"{summary.seconds:.1f} s"
        )
    lines.append(f"commit record: {summary.commit_record}")
    return lines


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jobs.nightly", description=__doc__)
    add_config_arguments(parser)
    parser.add_argument("--date", type=date.fromisoformat, help="the night, YYYY-MM-DD (UTC)")
    parser.add_argument("--retry", action="store_true", help="redo only failed clips")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when committed; 2 for a bad request, 1 for an environment failure (one line)."""
    from jobs.errors import exit_code
    from pipeline.preflight import preflight

    args = parse_args(sys.argv[1:] if argv is None else argv)

    def work() -> None:
        config = config_from_args(args)
        preflight(config)
        if args.retry:
            summary = retry_with_display(config, Console(), args.verbose)
        else:
            summary = night_with_display(config, args.date, Console(), args.verbose)
        print("\n".join(describe(summary)))
        if summary.processed:
            mark_duplicates(config)

    return exit_code(work, args.debug)


def mark_duplicates(config: RunConfig) -> None:
    """Footage dedup of what the night committed: each new clip against every clip
    committed before it (the decided ones are not decided again), so the night's copies of
    older footage get their `duplicate_of`. Its own lease and commit, after the run's."""
    from jobs.dedup import run_dedup

    run_dedup(config.output, "footage", options=config.storage.options(), console=Console())


if __name__ == "__main__":
    raise SystemExit(main())
