"""`clipnote dedup OUTPUT [--mode footage|semantic] [--threshold T]`: group duplicate clips.

Every clip of `clips` not decided yet is marked a duplicate of the nearest clip kept before it,
or kept, and the decisions are committed like a run (`pipeline.output.dedup_store`): a killed
dedup loses nothing committed and the next one goes on from there. The nightly calls
`run_dedup` after each night, so only the night's new clips are decided.
"""

from __future__ import annotations

from typing import Any

import pyarrow.compute as pc

from jobs.query import QueryError
from pipeline.core.storage import StorageOptions
from pipeline.output.dedup_store import MODES, read_decisions
from pipeline.output.similar import DedupSummary, dedup


def run_dedup(
    output: str,
    mode: str = "footage",
    threshold: float | None = None,
    options: StorageOptions | None = None,
    console: Any = None,
) -> DedupSummary:
    """Decide the undecided clips and commit; prints one line of what was decided."""
    if mode not in MODES:
        raise QueryError(f"--mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if threshold is not None and not 0.0 <= threshold <= 2.0:
        raise QueryError(f"--threshold: a cosine distance in [0, 2], got {threshold}")
    summary = dedup(output, mode, threshold, options)
    line = (
        f"dedup {summary.mode} (threshold {summary.threshold:g}): decided {summary.decided} "
        f"new clips: {summary.kept} kept, {summary.duplicates} duplicates"
    )
    if console is not None:
        console.print(line, soft_wrap=True)
    return summary


def duplicate_groups(
    output: str, mode: str = "footage", options: StorageOptions | None = None
) -> dict[str, list[str]]:
    """Kept clip -> its duplicates (sorted), for the report to show them under it."""
    decided = read_decisions(output, mode, options)
    dups = decided.filter(pc.is_valid(decided["duplicate_of"]))
    groups: dict[str, list[str]] = {}
    for clip, kept in zip(
        dups["clip_id"].to_pylist(), dups["duplicate_of"].to_pylist(), strict=False
    ):
        groups.setdefault(kept, []).append(clip)
    return {kept: sorted(clips) for kept, clips in sorted(groups.items())}
