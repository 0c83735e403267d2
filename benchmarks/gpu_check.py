"""The GPU check: what a lent GPU machine must show before a night runs on a rented cluster.

    python -m benchmarks.gpu_check                       # one CUDA GPU, full size, < 10 minutes
    python -m benchmarks.gpu_check --tiny --device cpu   # the same path at tiny shapes (CI)

1. **write**: a random checkpoint in the published format (Qwen2.5-3B and SigLIP-so400m shapes
   at full size), weights in the run's dtype, as a published checkpoint ships them.
2. **load**: a fresh process loads it through `load_model`: seconds, host peak RSS against the
   process's RSS before loading, GPU peak; and the dtype of every rotary `inv_freq` (fp32, or
   bf16 runs drift from the published model).
3. **generate**: the annotate path on random frames at each batch size: visual tokens once, a
   shared prefix, a caption of exactly 64 tokens and a tag list of exactly 32 (a stop id the
   model can never pick): clips/s and GPU peak, median of repeats.
4. **demo**: `clipnote demo` end to end on a local Ray (needs `ray` installed); its run record
   must name the device and dtype the check asked for (cuda and bfloat16 on a GPU).

Nothing is downloaded. One JSON goes to stdout; the exit code is 1 when a check failed, 2 when
the machine cannot run the check at all (one line on stderr says why).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GOAL_CLIPS_PER_S = 30.0
"""Issue 17's goal: full size, batch >= 32, caption 64 + tags 32 tokens, per H100-class GPU."""
GOAL_MIN_BATCH = 32
CHILD_TIMEOUT_S = 540
VARIANTS = {
    "static": "the annotate path as it runs: decoding steps on a fixed-shape KV cache, a CUDA "
    "graph on a GPU (`model.static_decoding`)",
    "transformers": "the baseline: decoding steps through transformers' own pass",
    "compiled_steps": "static, the step compiled by torch.compile before its graph is captured",
}


@dataclass(frozen=True)
class Shapes:
    """The model and workload one check runs at."""

    name: str
    text: dict[str, Any]
    vision: dict[str, Any]
    group: int
    queries: int
    frames: int
    batches: tuple[int, ...]
    caption_tokens: int = 64
    tag_tokens: int = 32
    repeats: int = 3
    variants: tuple[str, ...] = ("static",)
    """How the batches are timed, each in turn on the one loaded model (`VARIANTS`)."""


def shapes_for(tiny: bool) -> Shapes:
    from benchmarks.model import FULL_TEXT, FULL_VISION, TINY_TEXT, TINY_VISION

    if tiny:
        return Shapes("tiny", TINY_TEXT, TINY_VISION, 8, 16, frames=4, batches=(2, 4), repeats=1)
    return Shapes("full", FULL_TEXT, FULL_VISION, 16, 512, frames=16, batches=(16, 32, 64))


# -- 1. write --------------------------------------------------------------------------------


def write_random_checkpoint(shapes: Shapes, out: Path, device: str, dtype_name: str) -> dict:
    """A seeded random model at `shapes`, built straight in `dtype` on `device`, saved in the
    published format (`model.checkpoint.save_checkpoint`)."""
    import torch

    from model import TinyLlavaVideo, load_tokenizer, parse_config, save_checkpoint
    from model.checkpoint import TOY_CHECKPOINT_DIR

    raw = {
        "model_type": "tinyllava", "connector_type": "groupresampler",
        "num_queries": shapes.queries, "group": shapes.group, "num_resampler_layers": 3,
        "text_config": shapes.text, "vision_config": shapes.vision,
    }  # fmt: skip
    started = time.perf_counter()
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype_name))  # no fp32 copy of 3.6B weights first
    try:
        with torch.device(device):
            model = TinyLlavaVideo(parse_config(raw), load_tokenizer(TOY_CHECKPOINT_DIR))
    finally:
        torch.set_default_dtype(previous)
    save_checkpoint(model, out)
    params = sum(p.numel() for p in model.parameters())
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    weights = sum(p.stat().st_size for p in out.glob("*.safetensors"))
    return {"seconds": round(time.perf_counter() - started, 1), "parameters": params,
            "weights_bytes": weights}  # fmt: skip


# -- 2 and 3. load and generate, in a fresh process --------------------------------------------


def _rss_kib(field_name: str) -> int:
    """`VmRSS` (now) or `VmHWM` (peak) of this process, KiB; 0 where /proc has neither."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    found = re.search(rf"^{field_name}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def rotary_dtypes(model: Any) -> dict[str, int]:
    """How many rotary `inv_freq` buffers the model holds in each dtype."""
    counts: dict[str, int] = {}
    for name, buffer in model.named_buffers():
        if name.endswith("inv_freq"):
            key = str(buffer.dtype).removeprefix("torch.")
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def load_and_generate(checkpoint: Path, shapes: Shapes, device: str, dtype_name: str) -> dict:
    """Load through `load_model`, then time the annotate path at each batch size."""
    import torch

    from model import load_model

    cuda = device.startswith("cuda")
    baseline_kib = _rss_kib("VmRSS")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    model = load_model(checkpoint, device=device, dtype=getattr(torch, dtype_name))
    if cuda:
        torch.cuda.synchronize()
    load = {
        "seconds": round(time.perf_counter() - started, 2),
        "host_rss_before_gib": round(baseline_kib / 2**20, 2),
        "host_peak_rss_gib": round(_rss_kib("VmHWM") / 2**20, 2),
        "gpu_peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "model_dtype": str(model.dtype).removeprefix("torch."),
        "model_id": model.model_id,
    }
    load["rotary_inv_freq_dtypes"] = rotary_dtypes(model)
    timed = {}
    for variant in shapes.variants:
        timed[variant] = {}
        for b in shapes.batches:
            timed[variant][f"batch_{b}"] = time_batch(model, shapes, b, cuda, variant)
            print(f"gpu_check: {variant} batch {b}: {timed[variant][f'batch_{b}']}",
                  file=sys.stderr, flush=True)  # fmt: skip
    return {"load": load, "generate": timed[shapes.variants[0]], "variants": timed}


def time_batch(model: Any, shapes: Shapes, batch: int, cuda: bool, variant: str = "static") -> dict:
    """clips/s of visual tokens + shared prefix + fixed-length caption and tag answers, the
    decoding steps as `variant` says (`VARIANTS`)."""
    from dataclasses import replace

    import numpy as np
    import torch

    from benchmarks.model import fixed_length
    from model.prompts import CAPTION_PROMPT, TAG_PROMPT

    size = model.config.image_size
    rng = np.random.default_rng(batch)
    clips = [rng.integers(0, 256, (shapes.frames, size, size, 3), np.uint8) for _ in range(batch)]
    how = {"static_steps": variant != "transformers", "compile_steps": variant == "compiled_steps"}
    caption = replace(fixed_length(model, shapes.caption_tokens), **how)
    tags = replace(fixed_length(model, shapes.tag_tokens), **how)
    lengths: list[tuple[int, int]] = []
    phases: dict[str, list[float]] = {"encode": [], "prefix": [], "caption": [], "tags": []}

    def mark(name: str, since: float) -> float:
        """Where the batch's time goes (a sync per phase: four per batch, not per token)."""
        if cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        phases[name].append(now - since)
        return now

    def annotate() -> None:
        with torch.inference_mode():
            at = time.perf_counter()
            video = model.encode_frames(clips)
            at = mark("encode", at)
            prefix = model.share_prefix(video, [CAPTION_PROMPT, TAG_PROMPT])
            at = mark("prefix", at)
            captions = model.caption(video, CAPTION_PROMPT, caption, prefix)
            at = mark("caption", at)
            listed = model.generate_tags(video, TAG_PROMPT, tags, prefix)
            mark("tags", at)
        lengths[:] = [(c.num_tokens, t.num_tokens) for c, t in zip(captions, listed, strict=True)]

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    seconds = []
    for i in range(shapes.repeats + 1):  # the first is the warm-up
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        annotate()
        if cuda:
            torch.cuda.synchronize()
        if i:
            seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    return {
        "clips_per_s": round(batch / median, 2),
        "seconds_per_batch": round(median, 3),
        "gpu_peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "answer_tokens": sorted(set(lengths)),
        "phases_s": {name: round(statistics.median(t[1:]), 3) for name, t in phases.items()},
    }


# -- 4. the demo ---------------------------------------------------------------------------


@dataclass
class DemoOutcome:
    """What `clipnote demo` did, read from its output and its run record."""

    ran: bool
    reason: str = ""
    device: str | None = None
    dtype: str | None = None
    matches: str | None = None
    seconds: float | None = None


def run_demo(workdir: Path, timeout_s: float) -> DemoOutcome:
    """`clipnote demo` in its own process (a local Ray, the toy checkpoint, 6 toy videos)."""
    try:
        import ray  # noqa: F401  (only whether it is installed)
    except ImportError:
        return DemoOutcome(False, "ray is not installed here")
    out = workdir / "demo"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "demo", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout_s,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    seconds = round(time.perf_counter() - started, 1)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return DemoOutcome(False, f"exit {done.returncode}: {' | '.join(tail)}", seconds=seconds)
    record = demo_run_record(out / "output")
    found = re.search(r"(\d+/\d+) captions match", done.stdout)
    return DemoOutcome(
        True, device=record.get("device"), dtype=record.get("dtype"),
        matches=found.group(1) if found else None, seconds=seconds,
    )  # fmt: skip


def demo_run_record(output: Path) -> dict[str, Any]:
    """The demo's one run record (the JSON directly under `_runs/`)."""
    records = sorted((output / "_runs").glob("*.json"))
    return json.loads(records[-1].read_text()) if records else {}


# -- verdict -------------------------------------------------------------------------------


@dataclass
class Verdict:
    failed: list[str] = field(default_factory=list)

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            self.failed.append(what)


def judge(report: dict[str, Any], device: str, dtype_name: str, shapes: Shapes) -> Verdict:
    """The checks a GPU machine must pass; `report` is what the steps above measured."""
    verdict = Verdict()
    load = report.get("load")
    if load is not None:  # absent with --demo-only
        rotary = load.get("rotary_inv_freq_dtypes", {})
        verdict.expect(bool(rotary) and set(rotary) == {"float32"}, f"rotary inv_freq in {rotary}")
        verdict.expect(load.get("model_dtype") == dtype_name, f"model in {load.get('model_dtype')}")
    want = (shapes.caption_tokens, shapes.tag_tokens)
    for name, timing in report.get("generate", {}).items():
        lengths = [tuple(x) for x in timing["answer_tokens"]]
        verdict.expect(lengths == [want], f"{name}: answers of {lengths} tokens, not {want}")
    demo = report.get("demo")
    if demo and demo.get("ran"):
        expected = (device.split(":")[0], dtype_name)
        got = (demo.get("device"), demo.get("dtype"))
        verdict.expect(got == expected, f"demo's run record says {got}, expected {expected}")
    elif demo is not None and "not installed" not in demo.get("reason", ""):
        verdict.failed.append(f"demo did not run: {demo.get('reason')}")
    return verdict


def meets_goal(report: dict[str, Any], shapes: Shapes) -> bool | None:
    """Whether full size reached the clips/s goal at a batch >= 32 (None at tiny shapes)."""
    if shapes.name != "full":
        return None
    return any(
        int(name.split("_")[1]) >= GOAL_MIN_BATCH and t["clips_per_s"] >= GOAL_CLIPS_PER_S
        for name, t in report.get("generate", {}).items()
    )


# -- the command ---------------------------------------------------------------------------


def cannot_run(device: str) -> str | None:
    """Why this machine cannot run the check on `device`, in one line; None when it can."""
    try:
        import torch
    except ImportError:
        return "gpu_check: torch is not installed (pip install torch==2.13.0, its CUDA build)"
    if device.startswith("cuda") and not torch.cuda.is_available():
        build = torch.version.cuda or "none"
        return (
            f"gpu_check: no usable CUDA GPU (torch {torch.__version__}, CUDA build {build}): "
            "install torch's CUDA build on a GPU machine, or run --tiny --device cpu"
        )
    return None


def machine(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name()}, {os.cpu_count()} CPUs"
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads"


def child_main(spec: str) -> None:
    """The fresh process of steps 2 and 3: its RSS is the load's alone."""
    import torch

    torch.set_flush_denormal(True)  # as the parent: random weights hit no denormal slow path
    args = json.loads(spec)
    given = args["shapes"]
    shapes = Shapes(**{**given, "batches": tuple(given["batches"]),
                       "variants": tuple(given["variants"])})  # fmt: skip
    result = load_and_generate(Path(args["checkpoint"]), shapes, args["device"], args["dtype"])
    print(json.dumps(result))


def load_in_child(checkpoint: Path, shapes: Shapes, device: str, dtype_name: str) -> dict:
    spec = json.dumps({"checkpoint": str(checkpoint), "shapes": asdict(shapes),
                       "device": device, "dtype": dtype_name})  # fmt: skip
    # The child's stderr is this process's: each batch's timing shows as it is measured, so a
    # check cut short by its time limit still says how far it got.
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", "--child", spec],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=CHILD_TIMEOUT_S,
    )  # fmt: skip
    if done.returncode != 0:
        return {"load": {"error": f"the load-and-generate child exited {done.returncode}"}}
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes (the CPU path CI runs)")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--dtype", help="default: bfloat16 on cuda, float32 on cpu")
    parser.add_argument("--batches", help="comma-separated batch sizes (default 16,32,64)")
    parser.add_argument(
        "--variants",
        default="static",
        help=f"comma-separated, the first is the check's: {', '.join(VARIANTS)}",
    )
    parser.add_argument("--skip-demo", action="store_true", help="leave out step 4")
    parser.add_argument("--demo-only", action="store_true", help="step 4 alone")
    parser.add_argument("--workdir", type=Path, help="where the checkpoint goes (default: temp)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(args.child)
        return 0
    reason = cannot_run(args.device)
    if reason:
        print(reason, file=sys.stderr)
        return 2
    import torch

    torch.set_flush_denormal(True)  # random weights on a CPU: no denormal slow path
    dtype_name = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    shapes = shapes_for(args.tiny)
    if args.batches:
        batches = tuple(int(b) for b in args.batches.split(","))
        shapes = Shapes(**{**asdict(shapes), "batches": batches})
    variants = tuple(args.variants.split(","))
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        print(f"gpu_check: unknown --variants {unknown} (one of {', '.join(VARIANTS)})",
              file=sys.stderr)  # fmt: skip
        return 2
    shapes = Shapes(**{**asdict(shapes), "variants": variants})
    report: dict[str, Any] = {
        "machine": machine(args.device), "torch": torch.__version__,
        "shapes": shapes.name, "device": args.device, "dtype": dtype_name,
        "frames": shapes.frames, "tokens": [shapes.caption_tokens, shapes.tag_tokens],
    }  # fmt: skip
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        if not args.demo_only:
            checkpoint = Path(tmp) / "checkpoint"
            report["write"] = write_random_checkpoint(shapes, checkpoint, args.device, dtype_name)
            report.update(load_in_child(checkpoint, shapes, args.device, dtype_name))
        if not args.skip_demo:
            report["demo"] = asdict(run_demo(Path(tmp), timeout_s=300))
    report["meets_goal"] = meets_goal(report, shapes)
    verdict = judge(report, args.device, dtype_name, shapes)
    report["failed"] = verdict.failed
    print(json.dumps(report, indent=2))
    return 1 if verdict.failed else 0


if __name__ == "__main__":
    sys.exit(main())
