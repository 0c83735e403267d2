"""One captioning run, end to end: list -> decode -> annotate -> Parquet -> commit.

Expects Ray to be initialised by the caller (only `jobs/` calls `ray.init`). Returns a summary
a person can read; every listed video is accounted for in the committed output.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .annotate import AnnotateSettings, fingerprint
from .checkpoint_info import describe_checkpoint, resolve_model_source
from .config import RunConfig
from .decode import DecodeSettings, error_row
from .ray_data import build_dataset, cluster_has_gpus, iter_tables
from .records import VideoRef
from .schema import rows_to_table
from .sink import RunWriter
from .sources import list_videos


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass
class RunSummary:
    run_id: str
    output: str
    commit_record: str
    videos: int
    counts: dict[str, int]
    seconds: float
    files: list[str] = field(default_factory=list)

    @property
    def clips(self) -> int:
        return sum(self.counts.values())

    @property
    def clips_per_s(self) -> float:
        return self.clips / self.seconds if self.seconds > 0 else 0.0


def stage_settings(config: RunConfig, run_id: str) -> tuple[DecodeSettings, AnnotateSettings]:
    options = config.storage.options()
    source = resolve_model_source(config.model.source)
    info = describe_checkpoint(source, options)
    sampling = config.sampling.with_frames(info.num_frames)
    decode = DecodeSettings(
        clips=config.clips,
        sampling=sampling,
        processor=info.processor,
        storage=options,
        thumbnail_size=config.output_options.thumbnail_size,
    )
    annotate = AnnotateSettings(
        run_id=run_id,
        model_source=source,
        prompts=config.prompts,
        clips=config.clips,
        sampling=sampling,
        storage=options,
        dtype=config.model.dtype,
        max_new_tokens=config.model.max_new_tokens,
        tag_max_new_tokens=config.model.tag_max_new_tokens,
    )
    return decode, annotate


def _lost_videos_rows(refs: list[VideoRef], seen: set[str], settings: AnnotateSettings):
    """Error rows for listed videos that produced no row at all: nothing is lost silently."""
    rows = []
    for ref in refs:
        if ref.video_id in seen:
            continue
        row = error_row(ref, "no output produced for this video (worker lost?)")
        row.update(
            run_id=settings.run_id, clip_id=f"{ref.video_id}:-1", model_id=None, prompt_id=None,
            fingerprint=fingerprint(row, "", "", settings), tags=[], tag_scores=[],
            generated_tokens=0, annotate_s=0.0, created_at=datetime.now(UTC),
        )  # fmt: skip
        rows.append(row)
    return rows


def run_pipeline(
    config: RunConfig, on_progress: Callable[[int, dict[str, int]], None] | None = None
) -> RunSummary:
    """Run `config` on the Ray this process is connected to and commit its output."""
    started = time.perf_counter()
    run_id = config.run_id or new_run_id()
    decode, annotate = stage_settings(config, run_id)
    refs = list_videos(config.input, config.storage.options())
    gpus = config.resources.gpus_per_actor
    if gpus is None:
        gpus = 1.0 if cluster_has_gpus() else 0.0
    writer = RunWriter(
        config.output, run_id, config.storage.options(), config.output_options.rows_per_file
    )
    writer.begin()
    seen: set[str] = set()
    if refs:
        ds = build_dataset(
            refs, decode, annotate,
            batch_size=config.model.batch_size, decode_cpus=config.resources.decode_cpus,
            actors=config.resources.annotate_actors, cpus_per_actor=config.resources.cpus_per_actor,
            gpus_per_actor=gpus,
        )  # fmt: skip
        for table in iter_tables(ds):
            writer.write(table)
            seen.update(table.column("video_id").to_pylist())
            if on_progress:
                on_progress(len(seen), dict(writer.counts))
    lost = _lost_videos_rows(refs, seen, annotate)
    if lost:
        writer.write(rows_to_table(lost))
    seconds = time.perf_counter() - started
    details: dict[str, Any] = {
        "config": config.model_dump(mode="json"),
        "videos": len(refs),
        "seconds": round(seconds, 3),
        "gpus_per_actor": gpus,
        "sampling": {"num_frames": annotate.sampling.num_frames, "mode": annotate.sampling.mode},
    }
    record = writer.commit(details)
    return RunSummary(run_id, config.output, record, len(refs), dict(writer.counts), seconds,
                      writer.files)  # fmt: skip
