"""How much of the videos the captions cover: pure functions over clip rows.

Windows with a stride longer than their length, a `min_length_s` that drops a short tail, and
failed clips all leave seconds of video uncaptioned; the run summary shows covered seconds out
of video seconds so that a gap is seen, not discovered later.

A run never reads its rows back for this: each Parquet part's write result carries, per video,
its duration and the merged spans of its ok clips (`file_coverage`), and the driver's chunk
tracker adds a video up (`covered_seconds`) once all of its rows are written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipeline.core.status import STATUS_OK


def merge_spans(intervals: Iterable[Sequence[float]]) -> list[list[float]]:
    """The union of `(start, end)` intervals as sorted, disjoint `[start, end]` spans."""
    merged: list[list[float]] = []
    for start, stop in sorted((float(a), float(b)) for a, b in intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return merged


def covered_seconds(spans: Iterable[Sequence[float]], duration: float) -> float:
    """Seconds of a video of `duration` inside the union of `spans`."""
    return min(sum(stop - start for start, stop in merge_spans(spans)), duration)


def file_coverage(rows: Iterable[Mapping[str, Any]]) -> dict[str, tuple[float, list[list[float]]]]:
    """Per video: (its largest reported duration, the merged spans of its ok clips)."""
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    duration: dict[str, float] = defaultdict(float)
    for row in rows:
        uri = row["video_uri"]
        duration[uri] = max(duration[uri], float(row.get("video_duration_s") or 0.0))
        if row.get("status") == STATUS_OK and row.get("end_s") is not None:
            spans[uri].append((float(row["start_s"]), float(row["end_s"])))
    return {uri: (duration[uri], merge_spans(spans[uri])) for uri in duration}


def coverage_seconds(rows: Iterable[Mapping[str, Any]]) -> tuple[float, float]:
    """(seconds inside an `ok` clip, seconds of video), each video counted once.

    Rows need `video_uri`, `start_s`, `end_s`, `video_duration_s` and `status`; overlapping
    clips count once, and a video's length is its largest reported duration.
    """
    videos = file_coverage(rows).values()
    covered = sum(covered_seconds(spans, duration) for duration, spans in videos)
    return covered, sum(duration for duration, _ in videos)
