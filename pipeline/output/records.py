"""Everything the output side ships between processes or writes down, and its JSON form.

Each contract is a dataclass and this module is the only place that says how it looks as JSON,
so a writer and its reader cannot drift apart:

- `WriteResult` (worker -> driver, once per Parquet part) with a `VideoProgress` per video;
- `ChunkRecord` (`_runs/<run>/<attempt>/chunk-NNNNNN.json`): files committed together;
- `RunRecord` (`_runs/<run>.json`) with `RetiredAttempt`s and the run's `RunDetails`;
- `AttemptWork`: what one attempt contributes to its run record (`run_record.build_run_record`);
- `LeaseBody` (`_runs/<run>/_lease/NNNNNNNN.json`): who writes a run, until when.

Records on disk keep the keys and values earlier versions wrote, and parsing is lenient with
old records: a field they lack takes its default. Timestamps stay the ISO strings they are on
disk (readers sort them as text); `RetiredAttempt.at` and the lease's times are parsed because
code compares them with the clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Span = tuple[float, float]


def _spans(raw: Any) -> tuple[Span, ...]:
    return tuple((float(start), float(end)) for start, end in raw or ())


def _counts(raw: Mapping[str, Any] | None) -> dict[str, int]:
    return {str(status): int(rows) for status, rows in (raw or {}).items()}


# -- worker -> driver ------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoProgress:
    """One video's share of one Parquet part: enough for the driver to tell when the video is
    whole (its rows add up to `total`) and how much of it ok clips cover, without its rows."""

    uri: str
    rows: int
    """Rows of the video in this part."""
    total: int
    """Rows the video contributes to the attempt; 0 when unknown here (decode streams clips
    out before it knows how many: only the part with the video's last row carries it)."""
    duration_s: float = 0.0
    ok_spans: tuple[Span, ...] = ()
    """Merged `(start, end)` seconds of the video's ok clips in this part."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "rows": self.rows,
            "total": self.total,
            "duration_s": self.duration_s,
            "ok_spans": [list(span) for span in self.ok_spans],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> VideoProgress:
        return cls(
            uri=raw["uri"],
            rows=int(raw["rows"]),
            total=int(raw["total"]),
            duration_s=float(raw.get("duration_s", 0.0)),
            ok_spans=_spans(raw.get("ok_spans")),
        )


@dataclass(frozen=True)
class WriteResult:
    """What the driver learns of one written Parquet part: never its rows."""

    file: str
    rows: int
    counts: dict[str, int]
    """Rows by status."""
    videos: tuple[VideoProgress, ...] = ()

    def to_json(self) -> str:
        return json.dumps(
            {
                "file": self.file,
                "rows": self.rows,
                "counts": self.counts,
                "videos": [video.to_dict() for video in self.videos],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> WriteResult:
        raw = json.loads(text)
        return cls(
            file=raw["file"],
            rows=int(raw["rows"]),
            counts=_counts(raw.get("counts")),
            videos=tuple(VideoProgress.from_dict(v) for v in raw.get("videos", ())),
        )


# -- records on disk -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkRecord:
    """Files committed together, once every video with rows in them is whole."""

    run_id: str
    attempt: str = ""
    seq: int = 0
    run_date: str | None = None
    committed_at: str | None = None
    files: tuple[str, ...] = ()
    rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    videos: int = 0
    """Videos completed by this chunk."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "attempt": self.attempt,
            "seq": self.seq,
            "run_date": self.run_date,
            "committed_at": self.committed_at,
            "files": list(self.files),
            "rows": self.rows,
            "counts": self.counts,
            "videos": self.videos,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ChunkRecord:
        return cls(
            run_id=raw["run_id"],
            attempt=raw.get("attempt", ""),
            seq=int(raw.get("seq", 0)),
            run_date=raw.get("run_date"),
            committed_at=raw.get("committed_at"),
            files=tuple(raw.get("files", ())),
            rows=int(raw.get("rows") or 0),
            counts=_counts(raw.get("counts")),
            videos=int(raw.get("videos") or 0),
        )


@dataclass(frozen=True)
class RetiredAttempt:
    """An attempt a replacing run withdrew: its files are deleted once `at` + grace is past."""

    at: datetime
    files: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "files": list(self.files)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RetiredAttempt:
        return cls(datetime.fromisoformat(raw["at"]), tuple(raw.get("files", ())))


@dataclass(frozen=True)
class SamplingInfo:
    num_frames: int
    mode: str

    def to_dict(self) -> dict[str, Any]:
        return {"num_frames": self.num_frames, "mode": self.mode}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SamplingInfo:
        return cls(int(raw["num_frames"]), str(raw.get("mode", "")))


@dataclass(frozen=True)
class RunDetails:
    """What the run says about its last attempt, beyond files and counts (all optional: old
    records, and tests, may lack any of them)."""

    config: dict[str, Any] | None = None
    """The run's `RunConfig`, as JSON: the record says exactly what was asked."""
    mode: str | None = None
    videos: int | None = None
    """Videos listed."""
    skipped: int | None = None
    processed: int | None = None
    seconds: float | None = None
    """Wall seconds of the attempt."""
    gpus_per_actor: float | None = None
    settings_key: str | None = None
    model_key: str | None = None
    sampling: SamplingInfo | None = None
    device: str | None = None
    """Where every annotate actor ran the model (`cuda`, `cpu`): `annotate/device.py`."""
    dtype: str | None = None
    """The dtype every annotate actor ran the model in (`bfloat16`, `float32`, ...)."""

    def to_dict(self) -> dict[str, Any]:
        placed = {"device": self.device, "dtype": self.dtype} if self.device else {}
        return {
            "config": self.config,
            "mode": self.mode,
            "videos": self.videos,
            "skipped": self.skipped,
            "processed": self.processed,
            "seconds": self.seconds,
            "gpus_per_actor": self.gpus_per_actor,
            "settings_key": self.settings_key,
            "model_key": self.model_key,
            "sampling": self.sampling.to_dict() if self.sampling else None,
            **placed,  # only when a model ran: older records, and runs with nothing queued
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunDetails:
        sampling = raw.get("sampling")
        return cls(
            config=raw.get("config"),
            mode=raw.get("mode"),
            videos=raw.get("videos"),
            skipped=raw.get("skipped"),
            processed=raw.get("processed"),
            seconds=raw.get("seconds"),
            gpus_per_actor=raw.get("gpus_per_actor"),
            settings_key=raw.get("settings_key"),
            model_key=raw.get("model_key"),
            sampling=SamplingInfo.from_dict(sampling) if sampling else None,
            device=raw.get("device"),
            dtype=raw.get("dtype"),
        )


@dataclass(frozen=True)
class RunRecord:
    """A run id's state when its last attempt ended: the files readers see, what it retired."""

    run_id: str
    run_date: str | None = None
    committed_at: str | None = None
    attempt: str = ""
    """The attempt that wrote this record."""
    attempts: tuple[str, ...] = ()
    """Live attempts, oldest first: their files are the run's."""
    retired: dict[str, RetiredAttempt] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    """Rows of the live attempts, by status."""
    rows: int = 0
    attempt_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    """Rows each live attempt wrote, by status."""
    chunks: int = 0
    """Chunks the last attempt committed."""
    details: RunDetails = field(default_factory=RunDetails)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_date": self.run_date,
            "committed_at": self.committed_at,
            "attempt": self.attempt,
            "attempts": list(self.attempts),
            "retired": {a: info.to_dict() for a, info in self.retired.items()},
            "files": list(self.files),
            "counts": self.counts,
            "rows": self.rows,
            "attempt_counts": self.attempt_counts,
            "chunks": self.chunks,
            **self.details.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, default=str)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunRecord:
        attempt_counts = raw.get("attempt_counts") or {}
        return cls(
            run_id=raw["run_id"],
            run_date=raw.get("run_date"),
            committed_at=raw.get("committed_at"),
            attempt=raw.get("attempt", ""),
            attempts=tuple(raw.get("attempts", ())),
            retired={a: RetiredAttempt.from_dict(r) for a, r in raw.get("retired", {}).items()},
            files=tuple(raw.get("files", ())),
            counts=_counts(raw.get("counts")),
            rows=int(raw.get("rows") or 0),
            attempt_counts={a: _counts(c) for a, c in attempt_counts.items()},
            chunks=int(raw.get("chunks") or 0),
            details=RunDetails.from_dict(raw),
        )

    @property
    def last_attempt_rows(self) -> int:
        """Rows the attempt that wrote this record produced."""
        return sum(self.attempt_counts.get(self.attempt, {}).values())


@dataclass(frozen=True)
class AttemptWork:
    """What one attempt committed, as its run record needs it."""

    run_id: str
    run_date: str
    attempt: str
    files: tuple[str, ...] = ()
    """Its committed files, in commit order."""
    counts: dict[str, int] = field(default_factory=dict)
    chunks: int = 0


# -- the lease -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaseBody:
    """One generation of a run's lease: who holds it and until when."""

    owner: str
    """`host:pid:random`: tells our own lost-response retry from another writer."""
    host: str
    pid: int
    expires_at: datetime
    acquired_at: datetime | None = None
    """When this generation was last written (taken or renewed)."""
    released: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {
                "owner": self.owner,
                "host": self.host,
                "pid": self.pid,
                "acquired_at": self.acquired_at.isoformat() if self.acquired_at else None,
                "expires_at": self.expires_at.isoformat(),
                "released": self.released,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> LeaseBody:
        raw = json.loads(text)
        acquired = raw.get("acquired_at")
        return cls(
            owner=raw.get("owner", ""),
            host=raw.get("host", ""),
            pid=int(raw.get("pid", -1)),
            expires_at=datetime.fromisoformat(raw["expires_at"]),
            acquired_at=datetime.fromisoformat(acquired) if acquired else None,
            released=bool(raw.get("released", False)),
        )
