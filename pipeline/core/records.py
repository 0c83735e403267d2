"""Plain data that travels through the pipeline, and the stable ids derived from it."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

import numpy as np

VideoSource = bytes | str
"""A fetched video: its bytes in memory, or the path of a local file holding them."""


def short_hash(*parts: Any, length: int = 16) -> str:
    """Stable hex digest of JSON-encodable parts (sorted keys), for ids and fingerprints."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class VideoRef:
    """One input video as listed: where it is and which version of it.

    `version` is the object's ETag, or the file's mtime (ns) for local files. For a member of
    a `.tar` shard, `uri` is `shard_uri#member` and `offset`/`size` locate its bytes inside
    the shard, so decode reads just that range.

    Every field is valid UTF-8 (Arrow strings must be). A local name that is not UTF-8 is
    shown with its odd bytes escaped (`caf\\xe9.mp4`) and `raw_path` keeps the real name,
    percent-encoded, for reading.

    `problem` says why a listed input cannot be read at all (a missing manifest entry, a
    damaged shard, a refused entry): the lister keeps such inputs so that each gets an error
    row, never a gap (`pipeline.input.problems`). Their `version` still holds the value it
    always had ("missing", "<etag>:unreadable-tar", "invalid: <reason>") because `video_id`
    and the fingerprint hash it: a new value would make every such row look new once. It is
    identity only; nothing reads a meaning from it.
    """

    uri: str
    size: int
    version: str
    offset: int | None = None
    member: str | None = None
    shard_uri: str | None = None
    raw_path: str | None = None
    problem: str | None = None

    @property
    def read_path(self) -> str:
        """What to open: the video itself, or its shard, under its real (raw) name."""
        if self.raw_path is not None:
            return os.fsdecode(unquote_to_bytes(self.raw_path))
        return self.shard_uri if self.shard_uri is not None else self.uri

    @property
    def video_id(self) -> str:
        return short_hash(self.uri, self.size, self.version)

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> VideoRef:
        fields = {k: row.get(k) for k in cls.__dataclass_fields__}
        fields["size"] = int(fields["size"])
        if fields["offset"] is not None:
            fields["offset"] = int(fields["offset"])
        return cls(**fields)


@dataclass(frozen=True)
class ClipPlan:
    """One clip of a video: its bounds in seconds and the frames the model will see."""

    clip_index: int
    start_s: float
    end_s: float
    frame_indices: np.ndarray = field(compare=False)  # [T] int32
    frame_times_s: np.ndarray = field(compare=False)  # [T] float32
