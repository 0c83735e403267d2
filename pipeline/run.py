"""One captioning run, end to end: list -> plan -> decode -> annotate -> write -> commit.

Expects Ray to be initialised by the caller (only `jobs/` calls `ray.init`). The listing streams
into the attempt's work plan (`pipeline.work_plan`), which the decode tasks read; the workers
decode and annotate; the driver writes the output rows as Parquet parts, each closed on its
rows or its age, and commits them in chunks (`pipeline.output.commit`), so a crash loses at
most the chunks in flight. What the driver keeps grows with the number of pages, files and
chunks (and one open part's rows), not of videos. Every listed video that is
processed is accounted for in the committed output: clip rows or an error row.

Modes (`RunMode`):
- `all`: `clipnote run`: every listed video; a re-run of a run id replaces its earlier attempts.
- `incremental`: `clipnote nightly`: videos whose work key (video identity + model weights +
  prompts + settings) is already committed are skipped; a re-run of the night resumes it.
- `retry`: `clipnote retry`: only videos whose latest committed rows include an error, and of
  those only the failed clips when the rest were made with the same settings.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import pyarrow as pa

from pipeline.annotate.checkpoint_info import describe_checkpoint, resolve_model_source
from pipeline.annotate.device import ActorDevice, actor_device, actor_gpus
from pipeline.annotate.fingerprint import fingerprint, model_key, settings_key
from pipeline.annotate.settings import AnnotateSettings
from pipeline.config import RunConfig
from pipeline.core.errors import CommitError
from pipeline.core.records import VideoRef
from pipeline.core.rows import RowIdentity, output_row
from pipeline.core.stage import Writer
from pipeline.core.storage import StorageOptions
from pipeline.decode.video_rows import DecodeSettings, error_row
from pipeline.input.listing import iter_videos
from pipeline.output.chunks import ChunkTracker
from pipeline.output.commit import RunCommitter, new_attempt_id
from pipeline.output.part_writer import VIDEO_ROWS, write_part
from pipeline.output.reading import fold_latest_keys
from pipeline.output.records import RunDetails, SamplingInfo, WriteResult
from pipeline.output.schema import rows_to_table
from pipeline.ray_data import build_dataset, cluster_has_gpus, find_error, iter_write_results
from pipeline.run_stages import run_stages
from pipeline.work_plan import (
    DoneIndex,
    RunMode,
    WorkPlan,
    plan_folder,
    unwritten_videos,
    write_work_plan,
)


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass
class RunProgress:
    """What `on_progress` is told as a run goes (videos by stage, clip rows by status)."""

    listed: int = 0
    skipped: int = 0
    """Videos already done (incremental) or with nothing to retry."""
    queued: int = 0
    """Videos sent to decode + annotate."""
    written: int = 0
    """Queued videos whose rows are all decoded, annotated and written to Parquet."""
    committed: int = 0
    """Written videos whose files a commit record names."""
    chunks: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    """Clip rows written so far, by status."""


@dataclass
class RunSummary:
    run_id: str
    output: str
    commit_record: str
    videos: int
    """Videos listed."""
    counts: dict[str, int]
    """Rows this attempt wrote, by status."""
    seconds: float
    files: list[str] = field(default_factory=list)
    skipped: int = 0
    processed: int = 0
    chunks: int = 0
    attempt: str = ""
    mode: str = "all"
    covered_s: float = 0.0
    """Seconds of the processed videos inside an ok clip (`pipeline.output.coverage`)."""
    video_s: float = 0.0
    """Seconds of the processed videos."""
    device: str = ""
    """Where the annotate actors ran the model (`cuda`, `cpu`; empty: nothing to annotate)."""
    dtype: str = ""
    """The dtype they ran it in."""

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
        limits=config.decode.limits(),
        max_clips=config.decode.max_clips,
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
        stop_check_every=config.model.stop_check_every,
        model_key=model_key(source, options),
    )
    return decode, annotate


# -- what is done ------------------------------------------------------------------------


def done_index(output: str, options: StorageOptions, mode: RunMode) -> DoneIndex:
    """What a `mode` run skips or redoes, from the committed output (nothing for `all`)."""
    if mode == "all":
        return DoneIndex()
    fold = functools.partial(DoneIndex.from_latest, mode=mode)
    return fold_latest_keys(output, fold, options, extra=["status"])


def _lost_rows(refs: list[VideoRef], settings: AnnotateSettings, settings_hash: str) -> pa.Table:
    """Error rows for queued videos that produced no row at all: nothing is lost silently."""
    rows = []
    for ref in refs:
        decoded = error_row(ref, "no output produced for this video (worker lost?)")
        identity = RowIdentity(settings.run_id, fingerprint(decoded, settings, settings_hash))
        rows.append(output_row(decoded, identity))
    table = rows_to_table(rows)
    return table.append_column(VIDEO_ROWS, pa.array([1] * len(rows), pa.int32()))


# -- the run -------------------------------------------------------------------------------


def run_pipeline(
    config: RunConfig,
    on_progress: Callable[[RunProgress], None] | None = None,
    *,
    mode: RunMode = "all",
    run_date: date | None = None,
    connect: Callable[[], None] | None = None,
) -> RunSummary:
    """Run `config` on Ray, committing chunk by chunk. `connect` joins or starts Ray, called
    only once the plan has work: a night with nothing to do never starts one (None: the
    caller is connected already)."""
    started = time.perf_counter()
    run_id = config.run_id or new_run_id()
    run_date = run_date or datetime.now(timezone.utc).date()
    options = config.storage.options()
    decode, annotate = stage_settings(config, run_id)
    settings_hash = settings_key(annotate)
    commit = config.commit
    committer = RunCommitter(
        config.output, run_id, new_attempt_id(), run_date, options,
        mode="replace" if mode == "all" else "resume",
        grace_s=commit.grace_s, lease_ttl_s=commit.lease_ttl_s,
    )  # fmt: skip
    committer.on_write_start()
    progress = RunProgress()
    report = on_progress or (lambda _progress: None)
    tracker = ChunkTracker(commit.chunk_videos, commit.chunk_seconds)
    counts: Counter = Counter()
    gpus = config.resources.gpus_per_actor
    placement: ActorDevice | None = None
    try:
        plan = _plan(config, committer, settings_hash, mode, progress, report)
        if plan.queued:
            if connect is not None:
                connect()
            gpus = actor_gpus(gpus, config.model.source, cluster_has_gpus)
            placement = actor_device(gpus, config.model.dtype)
            stages = run_stages(config, decode, annotate, committer.target, gpus)
            ds = build_dataset(plan.pages, stages.decode, stages.annotate)
            _write_and_commit(ds, stages.write, tracker, committer, counts, progress, report)
        seen = tracker.completed_videos + len(tracker.incomplete_videos)
        chunk = tracker.take(force=True)
        if chunk is not None:
            _commit(committer, chunk, progress)
        if seen < plan.queued:
            lost = unwritten_videos(plan, committer.files, options)
            result = write_part(_lost_rows(lost, annotate, settings_hash), committer.target)
            counts.update(result.counts)
            tracker.add(result)
            _commit(committer, tracker.take(force=True), progress)
        progress.written, progress.counts = tracker.completed_videos, dict(counts)
        report(progress)
        seconds = time.perf_counter() - started
        details = RunDetails(
            config=config.model_dump(mode="json"), mode=mode, videos=plan.listed,
            skipped=plan.skipped, processed=plan.queued, seconds=round(seconds, 3),
            gpus_per_actor=gpus, settings_key=settings_hash, model_key=annotate.model_key,
            sampling=SamplingInfo(annotate.sampling.num_frames, annotate.sampling.mode),
            device=placement.device if placement else None,
            dtype=placement.dtype if placement else None,
        )  # fmt: skip
        record = committer.on_write_complete(details)
    except Exception as err:
        committer.on_write_failed(err)
        failure = find_error(err, CommitError)
        if failure is None:
            raise
        reason = str(failure).splitlines()[0]
        raise CommitError(
            f"run {run_id!r} could not write its output: {reason}; the {committer.chunks} "
            "chunks it committed are kept, and a re-run resumes from them"
        ) from err
    except BaseException as err:
        committer.on_write_failed(err)
        raise
    return RunSummary(
        run_id, config.output, record, plan.listed, dict(counts), seconds, committer.files,
        skipped=plan.skipped, processed=plan.queued, chunks=committer.chunks,
        attempt=committer.attempt, mode=mode, covered_s=tracker.covered_s,
        video_s=tracker.video_s, device=placement.device if placement else "",
        dtype=placement.dtype if placement else "",
    )  # fmt: skip


def _plan(
    config: RunConfig,
    committer: RunCommitter,
    settings_hash: str,
    mode: RunMode,
    progress: RunProgress,
    report: Callable[[RunProgress], None],
) -> WorkPlan:
    """List the input as a stream and write this attempt's work plan, page by page."""
    options = config.storage.options()
    index = done_index(config.output, options, mode)

    def on_page(plan: WorkPlan) -> None:
        progress.listed, progress.skipped, progress.queued = plan.listed, plan.skipped, plan.queued
        report(progress)

    folder = plan_folder(committer.output, committer.run_id, committer.attempt)
    refs = iter_videos(config.input, options)
    plan = write_work_plan(refs, index, settings_hash, mode, folder, options, on_page)
    on_page(plan)
    return plan


def _write_and_commit(
    ds: Any,
    write: Writer[WriteResult],
    tracker: ChunkTracker,
    committer: RunCommitter,
    counts: Counter,
    progress: RunProgress,
    report: Callable[[RunProgress], None],
) -> None:
    """Write the rows of `ds` part by part, on the driver, and commit each chunk once it is
    due. The tracker's own deadline wakes the driver too: files closed on their rows can wait
    for a chunk whose time comes while no part closes. An error here stops the dataset."""
    results = iter_write_results(ds, write, wake=tracker.wait_s)
    with contextlib.closing(results):
        for result in results:
            if result is not None:
                tracker.add(result)
                counts.update(result.counts)
                progress.written, progress.counts = tracker.completed_videos, dict(counts)
            if tracker.due():
                _commit(committer, tracker.take(), progress)
            report(progress)


def _commit(committer: RunCommitter, chunk, progress: RunProgress) -> None:
    committer.commit_chunk(chunk)
    progress.committed += len(chunk.videos)
    progress.chunks = committer.chunks
