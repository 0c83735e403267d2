"""One progress display for a run: live on a terminal, a plain line every few seconds in logs.

The pipeline reports `RunProgress` (videos listed / skipped / queued / written / committed,
clip rows by status); this module only renders it. On a terminal the line is redrawn in
place; anywhere else (a Ray Job's log, cron mail, CI) one line is printed every `interval_s`
seconds and once at the end, so logs stay readable.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from rich.console import Console

from pipeline.config import RunConfig
from pipeline.core.status import STATUS_OK
from pipeline.run import RunProgress, RunSummary


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def describe(progress: RunProgress, elapsed_s: float, width: int | None = None) -> str:
    """One line a person can read at a glance, with speed and time left; within `width`
    columns (a longer line wraps on a terminal, and a wrapped line cannot be redrawn in
    place), by leaving out first the listing counts, then the speed, then words."""
    ok = progress.counts.get(STATUS_OK, 0)
    errors = sum(n for status, n in progress.counts.items() if status != STATUS_OK)
    clips = ok + errors
    rate = clips / elapsed_s if elapsed_s > 0 else 0.0
    remaining = progress.queued - progress.written
    eta = ""
    if progress.written and remaining > 0:
        eta = f" | ETA {_duration(elapsed_s / progress.written * remaining)}"
    done = f"videos {progress.written}/{progress.queued}"
    counts = f"clips ok {ok}, errors {errors}"
    elapsed = _duration(elapsed_s)
    candidates = (
        f"{done} done (listed {progress.listed}, skipped {progress.skipped},"
        f" committed {progress.committed}) | {counts} | {rate:.2f} clips/s{eta}"
        f" | {elapsed} elapsed",
        f"{done} done (committed {progress.committed}) | {counts} | {rate:.2f} clips/s{eta}"
        f" | {elapsed} elapsed",
        f"{done} done | {counts}{eta} | {elapsed} elapsed",
        f"{done} | ok {ok}, errors {errors}{eta} | {elapsed}",
    )
    for line in candidates:
        if width is None or len(line) <= width:
            return line
    return candidates[-1]


def _width() -> int:
    """The terminal's width (`COLUMNS` first, as everywhere); 120 where there is none."""
    import shutil

    return shutil.get_terminal_size((120, 24)).columns


class ProgressDisplay:
    """Callable handed to `run_pipeline(on_progress=...)`; `close()` prints the last state."""

    def __init__(
        self,
        stream: TextIO | None = None,
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_s = interval_s
        self.clock = clock
        self.started = clock()
        self._last_print: float | None = None
        self._last: RunProgress | None = None

    @property
    def stream(self) -> TextIO:
        """The stream given, or `sys.stderr` as it is now: once Ray starts, that is a new
        object (`jobs.native_stderr`), and writing to it keeps this line off the filter."""
        return self._stream or sys.stderr

    def __call__(self, progress: RunProgress) -> None:
        self._last = progress
        now = self.clock()
        if self.live:
            line = describe(progress, now - self.started, _width() - 1)
            self._write(f"\r\033[2K{line}", newline=False)
        elif self._last_print is None or now - self._last_print >= self.interval_s:
            self._write(describe(progress, now - self.started, _width()))
            self._last_print = now

    def close(self) -> None:
        if self._last is None:
            return
        prefix = "\r\033[2K" if self.live else ""
        width = _width() - (1 if self.live else 0)
        self._write(prefix + describe(self._last, self.clock() - self.started, width))

    def _write(self, text: str, newline: bool = True) -> None:
        self.stream.write(text + ("\n" if newline else ""))
        self.stream.flush()


def refuse_gpu_wait_here(config: RunConfig) -> None:
    """`NoGpuHere` when the run's actors ask for a GPU and the local Ray it started has none."""
    from pipeline.annotate.device import actor_gpus, refuse_endless_wait
    from pipeline.ray_data import cluster_gpus

    wanted = actor_gpus(config.resources.gpus_per_actor, config.model.source, lambda: False)
    refuse_endless_wait(wanted, cluster_gpus(), can_gain_gpus=False, source=config.model.source)


def run_with_display(
    config: RunConfig, console: Console, verbose: bool = False, **run_options: Any
) -> RunSummary:
    """Run `config` with the progress display on stderr, print the summary. Ray is joined or
    started only once the run has work (`run_pipeline`'s `connect`)."""
    from jobs.ray_session import check_ray_address, connect
    from jobs.report import print_summary
    from pipeline.run import run_pipeline

    if os.environ.get("RAY_ADDRESS"):  # a cluster named but down: say so before any work
        check_ray_address(os.environ["RAY_ADDRESS"])
    display = ProgressDisplay()

    def join_ray() -> None:
        connect(verbose=verbose)
        if not os.environ.get("RAY_ADDRESS"):  # a local Ray: no GPU will ever join it
            refuse_gpu_wait_here(config)

    try:
        summary = run_pipeline(config, on_progress=display, connect=join_ray, **run_options)
    finally:
        display.close()
    print_summary(summary, console)
    return summary
