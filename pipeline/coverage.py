"""How much of the videos the captions cover: a pure function over clip rows.

Windows with a stride longer than their length, a `min_length_s` that drops a short tail, and
failed clips all leave seconds of video uncaptioned; the run summary shows covered seconds out
of video seconds so that a gap is seen, not discovered later.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any


def _union_length(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def coverage_seconds(rows: Iterable[Mapping[str, Any]]) -> tuple[float, float]:
    """(seconds inside an `ok` clip, seconds of video), each video counted once.

    Rows need `video_uri`, `start_s`, `end_s`, `video_duration_s` and `status`; overlapping
    clips count once, and a video's length is its largest reported duration.
    """
    clips: dict[str, list[tuple[float, float]]] = defaultdict(list)
    duration: dict[str, float] = defaultdict(float)
    for row in rows:
        uri = row["video_uri"]
        duration[uri] = max(duration[uri], float(row.get("video_duration_s") or 0.0))
        if row.get("status") == "ok" and row.get("end_s") is not None:
            clips[uri].append((float(row["start_s"]), float(row["end_s"])))
    covered = sum(min(_union_length(clips[uri]), duration[uri]) for uri in duration)
    return covered, sum(duration.values())
