"""Inputs listed with a problem: the reason is a field of their ref, and their ids are the ones
earlier releases gave them (a changed id would make every such video look new once)."""

from __future__ import annotations

import pytest

from pipeline.core.records import VideoRef
from pipeline.input.problems import (
    listing_error,
    missing_ref,
    refused_ref,
    unreadable_shard_ref,
)

# sha256 of the JSON `[uri, size, version]` (compact separators), first 16 hex digits, as
# written by the release that marked these refs by their `version` alone.
CASES = [
    (
        missing_ref("/data/gone.mp4"),
        "object not found: /data/gone.mp4",
        "missing",
        "444591eb2f7d1bfb",
    ),
    (
        unreadable_shard_ref("/data/bad.tar", 2048, "1700000000000000000"),
        "not a readable (uncompressed) tar shard: /data/bad.tar",
        "1700000000000000000:unreadable-tar",
        "091b10b8c30561d3",
    ),
    (
        refused_ref("/data/m.jsonl#line-2", "manifest /data/m.jsonl line 2: invalid JSON"),
        "manifest /data/m.jsonl line 2: invalid JSON",
        "invalid: manifest /data/m.jsonl line 2: invalid JSON",
        "40b03b42fd67f7f6",
    ),
]


@pytest.mark.parametrize(("ref", "reason", "version", "video_id"), CASES)
def test_a_listing_problem_is_a_field_and_the_identity_is_unchanged(
    ref: VideoRef, reason: str, version: str, video_id: str
) -> None:
    assert ref.problem == reason
    assert listing_error(ref) == reason
    assert ref.version == version
    assert ref.video_id == video_id


def test_the_version_alone_no_longer_marks_a_problem() -> None:
    """Catches: `listing_error` still reading a meaning out of `version`."""
    looks_missing = VideoRef(uri="/data/v.mp4", size=10, version="missing")
    looks_refused = VideoRef(uri="/data/w.mp4", size=10, version="invalid: no")
    assert listing_error(looks_missing) is None
    assert listing_error(looks_refused) is None
    assert listing_error(VideoRef("/data/x.mp4", 10, "7", problem="told so")) == "told so"
