"""`clipnote plan CONFIG [--sample N]`: measure a sample with the real pipeline, then size a run.

Before paying for a cluster a user wants to know what a run will take. `plan` lists the input
(every video, as `run` would), runs the real pipeline on a sample of it (the same decode,
model, prompts and settings, into a temporary output, never the run's output), and reads the
costs the pipeline records per clip: decode seconds (CPU, one decode task per CPU), annotate
seconds (actor time, a batch's time shared by its clips) and tokens generated. From those:

- throughput of a cluster of G annotate actors (GPUs) and C decode CPUs:
  `min(G / annotate_s_per_clip, C / decode_s_per_clip)` clips/s; the smaller term is the
  bottleneck;
- decode CPUs per GPU that keep the GPUs busy: `decode_s / annotate_s` plus 25% headroom;
- wall time: the sample's fixed start-up cost (its wall time less its clips at the measured
  throughput) plus every clip of the input at the cluster's throughput; GPU-hours = wall x G;
- the largest batch that fits the GPU memory it is told (`--gpu-memory-gb`) or finds (CUDA),
  measured, not estimated: the annotator's own forward (vision tower in its slices, resampler,
  prefill and decoding with its KV cache) traced on the meta device at the dtype an actor
  loads the weights in, at a few batch sizes, the answer always one of them
  (`pipeline.annotate.memory`, `model.memory`); with no GPU here and none given it says in
  one line that it sized nothing;
- what that means for `cluster.yaml`: GPU nodes (1 GPU each) and decode nodes (32 CPUs each,
  the GPU nodes' own decode CPUs counted first: of a GPU node's 8 CPUs it advertises 6 to Ray,
  keeping 2 for the annotate actor's own thread, and the actor holds 1 of the 6).

`plan` needs no output: the sample runs into a temporary folder, and an output that is given
is neither probed nor created. Numbers are measured on the machine `plan` runs on: run it
where the run will run (on the cluster: `clipnote submit` a plan, or a GPU node) for GPU
timings. The sample's per-clip costs are averages over its clips, so a sample should hold
several clips per annotate batch.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from pipeline.annotate.memory import BatchSizing
from pipeline.config import RunConfig
from pipeline.core.status import STATUS_OK

T = TypeVar("T")

DECODE_HEADROOM = 1.25
GPU_MEMORY_USABLE = 0.85
"""Of a GPU's memory, what weights and a batch may take: the rest is for what a trace of the
forward cannot see (the CUDA context, the caching allocator's rounding and fragmentation)."""
DECODE_NODE_CPUS = 32  # cluster.yaml's decode node type
GPU_NODE_CPUS = 8
"""vCPUs of cluster.yaml's gpu node type (g6e.2xlarge: 1 GPU, 8 vCPUs)."""
GPU_NODE_RAY_CPUS = 6
"""CPUs that node type advertises to Ray (its `resources`): the other 2 are never scheduled, so
the annotate actor's own Python thread and CUDA launches do not compete with decode processes."""
ACTOR_CPUS = 1
"""Of the advertised CPUs, what the annotate actor holds (`resources.cpus_per_actor`)."""
GPU_NODE_DECODE_CPUS = GPU_NODE_RAY_CPUS - ACTOR_CPUS
"""What decode gets on each GPU node."""


@dataclass
class SampleMeasure:
    """What the pipeline recorded for the sample run."""

    videos: int
    clips: int
    ok: int
    errors: int
    decode_s_per_clip: float
    annotate_s_per_clip: float
    tokens_per_clip: float
    clips_per_video: float
    wall_s: float
    actors: int
    decode_cpus: float
    """Decode CPUs the sample ran with (this machine's Ray CPUs not held by actors)."""

    @property
    def rate(self) -> float:
        """Clips/s the sample's own cluster sustains by the per-clip costs."""
        return throughput(self, self.actors, self.decode_cpus)[0]


@dataclass
class Plan:
    total_videos: int
    total_clips: int
    gpus: int
    decode_cpus: float
    clips_per_s: float
    bottleneck: str
    overhead_s: float
    wall_s: float
    gpu_hours: float
    decode_cpus_per_gpu: int
    batch_size: int | None
    batch_memory_note: str
    gpu_nodes: int
    decode_nodes: int
    batch_sizing: dict[str, Any] | None = None
    """The measurement behind `batch_size` (`BatchSizing`), None when not sized."""


def throughput(m: SampleMeasure, gpus: int, decode_cpus: float) -> tuple[float, str]:
    """(clips/s, bottleneck) of `gpus` annotate actors and `decode_cpus` decode CPUs."""
    annotate = gpus / m.annotate_s_per_clip if m.annotate_s_per_clip > 0 else math.inf
    decode = decode_cpus / m.decode_s_per_clip if m.decode_s_per_clip > 0 else math.inf
    if math.isinf(annotate) and math.isinf(decode):
        return math.inf, "none"
    return (annotate, "annotate") if annotate <= decode else (decode, "decode")


def predict(
    m: SampleMeasure,
    total_videos: int,
    gpus: int,
    decode_cpus: float | None = None,
    batch_size: int | None = None,
    batch_note: str = "",
) -> Plan:
    """Size a run of `total_videos` on `gpus` actors and `decode_cpus` decode CPUs (pure).

    `decode_cpus` None: as many as keep the GPUs busy (`decode_cpus_per_gpu` each).
    """
    per_gpu = max(1, math.ceil(DECODE_HEADROOM * m.decode_s_per_clip / m.annotate_s_per_clip))
    if m.annotate_s_per_clip <= 0:
        per_gpu = 1
    cpus = float(decode_cpus if decode_cpus is not None else per_gpu * gpus)
    rate, bottleneck = throughput(m, gpus, cpus)
    total_clips = round(total_videos * m.clips_per_video)
    sample_rate = m.rate
    overhead = max(0.0, m.wall_s - (m.clips / sample_rate if sample_rate > 0 else 0.0))
    wall = overhead + (total_clips / rate if rate > 0 else 0.0)
    usable_on_gpu_nodes = gpus * GPU_NODE_DECODE_CPUS
    decode_nodes = max(0, math.ceil((cpus - usable_on_gpu_nodes) / DECODE_NODE_CPUS))
    return Plan(
        total_videos=total_videos, total_clips=total_clips, gpus=gpus, decode_cpus=cpus,
        clips_per_s=rate, bottleneck=bottleneck, overhead_s=overhead, wall_s=wall,
        gpu_hours=wall * gpus / 3600, decode_cpus_per_gpu=per_gpu, batch_size=batch_size,
        batch_memory_note=batch_note, gpu_nodes=gpus, decode_nodes=decode_nodes,
    )  # fmt: skip


# -- GPU memory per batch ----------------------------------------------------------------------


def detect_gpu_memory_gb() -> float | None:
    """Memory of CUDA device 0 in GB, or None without CUDA."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_properties(0).total_memory / 1e9
    except Exception:  # no driver: no GPU to size for
        return None
    return None


def size_batch(config: RunConfig, memory_gb: float, checkpoint_frames: int) -> BatchSizing:
    """Measure the run's annotation on its checkpoint for a GPU of `memory_gb` GB
    (`pipeline.annotate.memory`), at the dtype an actor given a GPU loads it in."""
    from pipeline.annotate.checkpoint_info import resolve_model_source
    from pipeline.annotate.device import actor_device
    from pipeline.annotate.memory import clip_frames, measure_for_gpu

    return measure_for_gpu(
        resolve_model_source(config.model.source), config.storage.options(),
        actor_device(1.0, config.model.dtype).dtype,
        clip_frames(config.sampling, checkpoint_frames), config.prompts,
        (config.model.max_new_tokens, config.model.tag_max_new_tokens),
        int(memory_gb * 1e9 * GPU_MEMORY_USABLE),
    )  # fmt: skip


def not_sized_note(cluster_has_gpus: bool) -> str:
    """Why no batch size is printed, in one line (no GPU here and no size given)."""
    if cluster_has_gpus:
        return (
            "not sized: this machine has no GPU (the cluster's are on other nodes): give "
            "--gpu-memory-gb N to size it for their N GB"
        )
    return (
        "not sized: no GPU in this cluster and none given: --gpu-memory-gb N sizes it for a "
        "GPU of N GB"
    )


def sizing_note(sizing: BatchSizing, memory_gb: float, found: bool) -> str:
    """One line: what the batch was sized from (the measured peaks, the weights at their dtype)."""
    gb = 1e9
    where = "found" if found else "given"
    head = (
        f"{memory_gb:.0f} GB GPU ({where}), {GPU_MEMORY_USABLE:.0%} of it used: weights "
        f"{sizing.weights_bytes / gb:.2f} GB in {sizing.dtype}"
    )
    if not sizing.measured:
        return f"{head}: the weights alone do not fit"
    traced = ", ".join(str(b) for b in sorted(sizing.measured))
    if not sizing.batch:
        return (
            f"{head}: one clip of {sizing.frames} frames needs "
            f"{sizing.measured[min(sizing.measured)] / gb:.2f} GB more, which does not fit"
        )
    per_clip = sizing.per_clip_bytes
    slope = f", ~{per_clip / 1e6:.0f} MB per clip" if per_clip else ""
    return (
        f"{head}, a batch of {sizing.batch} measured at "
        f"{sizing.measured[sizing.batch] / gb:.2f} GB more{slope} (traced at {traced} clips "
        f"of {sizing.frames} frames)"
    )


# -- the plan's own config --------------------------------------------------------------------

UNUSED_OUTPUT = str(Path(tempfile.gettempdir()) / "clipnote-plan-unused-output")
"""What a plan's config names as its output: plan measures into a temporary folder of its own,
so the output is neither needed nor used, nor created, nor probed."""


def plan_config(
    config_path: Path | None,
    input_uri: str | None = None,
    output_uri: str | None = None,
    model_uri: str | None = None,
    sets: list[str] | None = None,
) -> RunConfig:
    """The run config a plan measures, validated, after the checkpoint and input checks: an
    output is never required (a config's or `--output` is accepted and left untouched)."""
    from jobs.options import config_from_cli
    from pipeline.preflight import preflight

    del output_uri  # accepted, as `run` takes it, and never used: the sample writes elsewhere
    config = config_from_cli(config_path, input_uri, UNUSED_OUTPUT, model_uri, sets)
    preflight(config, output=False)
    return config


# -- running the sample ------------------------------------------------------------------------


def sample_refs(refs: list, n: int) -> list:
    """`n` videos spread over the listing (every k-th), deterministic."""
    if n >= len(refs):
        return list(refs)
    step = len(refs) / n
    return [refs[int(i * step)] for i in range(n)]


def sample_stream(refs: Iterable[T], n: int) -> tuple[list[T], int]:
    """`n` items spread over a stream of unknown length, and its length, holding at most 2n:
    every `step`-th item is kept, and when 2n are kept every other one is dropped and the
    step doubles (a listing of 1M videos is never held to plan a run)."""
    kept: list[T] = []
    step, count = 1, 0
    for index, ref in enumerate(refs):
        count += 1
        if index % step == 0:
            kept.append(ref)
            if len(kept) >= 2 * n:
                kept, step = kept[::2], step * 2
    return sample_refs(kept, n), count


def measure_sample(
    config: RunConfig, refs: list, workdir: Path, connect: Callable[[], None] | None = None
) -> SampleMeasure:
    """Run the real pipeline on `refs` into `workdir` and read its per-clip costs.

    `connect` starts or joins Ray inside the measured wall, as `clipnote run` does: a local
    run's seconds include its Ray start (seconds on a small machine), so the sample's must too,
    or the predicted overhead misses it."""
    from jobs.ray_session import cluster_cpus
    from pipeline.output.reading import read_all
    from pipeline.run import run_pipeline

    manifest = workdir / "sample.txt"
    manifest.write_text("".join(f"{ref.uri}\n" for ref in refs), encoding="utf-8")
    sample_config = config.model_copy(
        update={"input": str(manifest), "output": str(workdir / "out"), "run_id": "plan-sample"}
    )
    started = time.perf_counter()
    summary = run_pipeline(sample_config, connect=connect)
    wall = time.perf_counter() - started
    rows = read_all(str(workdir / "out")).to_pylist()
    ok = [r for r in rows if r["status"] == STATUS_OK]
    decoded = [r for r in rows if (r.get("decode_s") or 0) > 0]
    actors = config.resources.annotate_actors
    cpus = cluster_cpus()
    decode_cpus = max(cpus - actors * config.resources.cpus_per_actor, 1.0)
    return SampleMeasure(
        videos=len(refs), clips=len(rows), ok=len(ok), errors=len(rows) - len(ok),
        decode_s_per_clip=sum(r["decode_s"] for r in decoded) / max(len(decoded), 1),
        annotate_s_per_clip=sum(r["annotate_s"] for r in ok) / max(len(ok), 1),
        tokens_per_clip=sum(r["generated_tokens"] for r in ok) / max(len(ok), 1),
        clips_per_video=len(rows) / max(len(refs), 1), wall_s=max(wall, summary.seconds),
        actors=actors, decode_cpus=decode_cpus / config.resources.decode_cpus,
    )  # fmt: skip


def make_plan(
    config: RunConfig,
    sample: int = 8,
    gpus: int | None = None,
    gpu_memory_gb: float | None = None,
    workdir: Path | None = None,
    connect: Callable[[], None] | None = None,
) -> tuple[SampleMeasure, Plan, dict[str, Any]]:
    """List, measure a sample, size the run (`connect` joins Ray once there is a sample to
    run; None: connected already)."""
    from pipeline.annotate.checkpoint_info import describe_checkpoint, resolve_model_source
    from pipeline.input.listing import iter_videos

    options = config.storage.options()
    chosen, listed = sample_stream(iter_videos(config.input, options), max(1, sample))
    if not listed:
        from pipeline.config import ConfigError

        raise ConfigError(f"input: no videos under {config.input}")
    with tempfile.TemporaryDirectory(prefix="clipnote-plan-", dir=workdir) as tmp:
        measure = measure_sample(config, chosen, Path(tmp), connect)
    info = describe_checkpoint(resolve_model_source(config.model.source), options)
    found = gpu_memory_gb is None
    memory_gb = gpu_memory_gb or detect_gpu_memory_gb()
    batch, sizing = None, None
    if memory_gb:
        measured = size_batch(config, memory_gb, info.num_frames)
        batch, note, sizing = measured.batch, sizing_note(measured, memory_gb, found), measured
    else:
        from pipeline.ray_data import cluster_has_gpus

        note = not_sized_note(cluster_has_gpus())
    gpus = gpus if gpus is not None else config.resources.annotate_actors
    plan = predict(measure, listed, gpus, None, batch, note)
    local = predict(measure, listed, measure.actors, measure.decode_cpus, batch, note)
    if sizing is not None:
        plan.batch_sizing = asdict(sizing)
    return measure, plan, {"this_machine": asdict(local), "listed": listed}


def format_plan(measure: SampleMeasure, plan: Plan, local: dict[str, Any]) -> str:
    def hms(seconds: float) -> str:
        s = round(seconds)
        return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s"

    lines = [
        f"sample: {measure.videos} videos, {measure.clips} clips ({measure.errors} errors) in "
        f"{measure.wall_s:.1f} s",
        f"  decode   {measure.decode_s_per_clip:.3f} CPU s/clip",
        f"  annotate {measure.annotate_s_per_clip:.3f} s/clip per actor",
        f"  tokens   {measure.tokens_per_clip:.1f} per clip; {measure.clips_per_video:.2f} "
        "clips per video",
        f"input: {plan.total_videos} videos -> ~{plan.total_clips} clips",
        f"this machine ({measure.actors} actor(s), {measure.decode_cpus:g} decode CPUs): "
        f"{local['clips_per_s']:.2f} clips/s, wall ~{hms(local['wall_s'])}",
        f"batch size: {plan.batch_size} ({plan.batch_memory_note})"
        if plan.batch_size is not None
        else f"batch size: {plan.batch_memory_note}",
        f"decode CPUs per GPU to keep it busy: {plan.decode_cpus_per_gpu}",
        f"with {plan.gpus} GPU(s) and {plan.decode_cpus:g} decode CPUs: {plan.clips_per_s:.2f} "
        f"clips/s ({plan.bottleneck}-bound), wall ~{hms(plan.wall_s)}, "
        f"{plan.gpu_hours:.2f} GPU-hours",
        f"cluster.yaml: gpu workers {plan.gpu_nodes} (1 GPU, {GPU_NODE_CPUS} CPUs each, "
        f"{GPU_NODE_RAY_CPUS} advertised to Ray: {GPU_NODE_CPUS - GPU_NODE_RAY_CPUS} kept for the "
        f"annotate actor, {GPU_NODE_DECODE_CPUS} decode), decode workers {plan.decode_nodes} "
        f"({DECODE_NODE_CPUS} CPUs each): set min_workers/max_workers of those node types to "
        "at least these",
        "(timings are this machine's: plan on the cluster's GPU nodes for GPU numbers)",
    ]
    return "\n".join(lines)
