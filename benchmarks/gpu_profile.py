"""Where one full-size batch's GPU time goes: by phase, by kernel, and by attention backend.

    python -m benchmarks.gpu_profile [--batch 32]   # one CUDA GPU, about 3 minutes

`benchmarks.gpu_check` says how fast the annotate path is; this says why. On a random
full-size checkpoint (as gpu_check writes it) it reports:

1. **kernels**: torch.profiler over one batch of each phase (visual tokens, shared prefix,
   a 64-token caption), the ten kernels with the most GPU time in each, with their counts;
2. **tower**: seconds of the visual-token phase at this batch under each SDPA backend that
   accepts the vision tower's attention, and with 256 or 1,024 frames a pass;
3. **step**: milliseconds of one fixed-shape decoding step (a CUDA graph replay) alone, at
   this batch and at 256, against the bytes a step must read (weights and cache) at the
   GPU's memory bandwidth.

Nothing is downloaded; one JSON goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from benchmarks.gpu_check import shapes_for, write_random_checkpoint
from benchmarks.model import fixed_length
from model import load_model
from model.prompts import CAPTION_PROMPT, TAG_PROMPT
from model.static_decoding import decoder_for


def _clips(model: Any, batch: int, frames: int) -> list[np.ndarray]:
    size = model.config.image_size
    rng = np.random.default_rng(batch)
    return [rng.integers(0, 256, (frames, size, size, 3), np.uint8) for _ in range(batch)]


def _seconds(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        started = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 4)


def top_kernels(fn, count: int = 10) -> list[dict[str, Any]]:
    """The `count` kernels with the most GPU time in one call of `fn`."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_time_total > 0]
    total = sum(e.device_time_total for e in events) or 1
    events.sort(key=lambda e: e.device_time_total, reverse=True)
    return [{"kernel": e.key[:90], "calls": e.count, "ms": round(e.device_time_total / 1e3, 2),
             "share": round(e.device_time_total / total, 3)} for e in events[:count]]  # fmt: skip


def tower_variants(model: Any, clips: list[np.ndarray]) -> dict[str, float]:
    out: dict[str, float] = {}
    backends = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}  # fmt: skip
    for name, backend in backends.items():
        try:
            with sdpa_kernel(backend):
                out[f"sdpa_{name}"] = _seconds(lambda: model.encode_frames(clips))
        except RuntimeError as err:
            out[f"sdpa_{name}"] = f"refused: {str(err).splitlines()[0][:80]}"
    pixels = model.processor(
        torch.stack([torch.as_tensor(c) for c in clips]), device=model.device, dtype=model.dtype
    )
    for per_pass in (256, 1024):
        with torch.inference_mode():
            out[f"frames_per_pass_{per_pass}"] = _seconds(
                lambda: model.encode_video(pixels, frames_per_pass=per_pass)  # noqa: B023
            )
    return out


def step_ms(model: Any, rows: int) -> dict[str, float]:
    """One graph replay alone, and the bytes it must read at the GPU's bandwidth."""
    decoder = decoder_for(model, rows, 640)
    lm = model.language_model
    weights = sum(p.numel() * p.element_size() for p in lm.parameters())
    cache = sum(k.numel() * k.element_size() for k in decoder.keys) * 2 * 580 / 640
    tokens = torch.zeros(rows, dtype=torch.long, device=model.device)

    def steps() -> None:
        decoder.used = 0
        decoder.slot.fill_(580)
        for _ in range(32):
            decoder.step(tokens)

    seconds = _seconds(steps)
    return {"ms_per_step": round(seconds / 32 * 1e3, 3),
            "bytes_per_step_gb": round((weights + cache) / 1e9, 2)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_profile: needs a CUDA GPU", file=sys.stderr)
        return 2
    shapes = shapes_for(tiny=False)
    report: dict[str, Any] = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "checkpoint"
        write_random_checkpoint(shapes, checkpoint, "cuda", "bfloat16")
        model = load_model(checkpoint, device="cuda", dtype=torch.bfloat16)
    clips = _clips(model, args.batch, shapes.frames)
    caption = fixed_length(model, shapes.caption_tokens)
    with torch.inference_mode():
        video = model.encode_frames(clips)
        prefix = model.share_prefix(video, [CAPTION_PROMPT, TAG_PROMPT])
        report["kernels"] = {
            "encode": top_kernels(lambda: model.encode_frames(clips)),
            "prefix": top_kernels(lambda: model.share_prefix(video, [CAPTION_PROMPT, TAG_PROMPT])),
            "caption": top_kernels(lambda: model.caption(video, CAPTION_PROMPT, caption, prefix)),
        }
        print(json.dumps(report["kernels"]), file=sys.stderr, flush=True)
        report["tower_s"] = tower_variants(model, clips)
        print(json.dumps(report["tower_s"]), file=sys.stderr, flush=True)
        report["step"] = {f"batch_{b}": step_ms(model, b) for b in (args.batch, 256)}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
