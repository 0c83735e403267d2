"""Caption plus tags the way an annotate actor asks them, against asking each from scratch.

    python -m benchmarks.generation [--repeats 5] [--sizes tiny,mid] [--batch 4]

Both variants answer the caption question (64 tokens) and the tag question (32 tokens) about
the same visual tokens, with answers of fixed length (a stop id the model can never pick):

- **shared** (today's annotate path): the prompt's common prefix (system prompt, video tokens)
  prefilled once for both questions (`share_prefix`), stops checked every 8 steps;
- **scratch** (before issue 17): each question prefills its whole prompt, stops checked every
  step.

Reported per size: tokens/s of each and their ratio (interleaved, one of each per repeat, the
first pair a warm-up, median), prefill FLOPs per clip of each (torch's `FlopCounterMode` over
a 1-token answer, which is the prefill alone), and whether the greedy answers are identical.
Random seeded weights; flush-to-zero on. `tiny` is the tests' size; `mid` a Qwen2-style LM of
8 layers x 512 with the real vocabulary, 512 video tokens from 16 frames, as the published
model has.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.model import TINY_TEXT, TINY_VISION, build_model, fixed_length, median_seconds
from model.generation import GenerationSettings
from model.prompts import CAPTION_PROMPT, TAG_PROMPT

MID_TEXT = {
    "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 512, "intermediate_size": 1536,
    "num_hidden_layers": 8, "num_attention_heads": 8, "num_key_value_heads": 2,
    "max_position_embeddings": 32768, "rope_theta": 1000000.0, "tie_word_embeddings": True,
}  # fmt: skip
MID_VISION = {
    "model_type": "siglip_vision_model", "hidden_size": 384, "intermediate_size": 1536,
    "num_hidden_layers": 6, "num_attention_heads": 6, "image_size": 224, "patch_size": 14,
}  # fmt: skip
SIZES = {
    "tiny": (TINY_TEXT, TINY_VISION, 8, 16, 8),  # text, vision, group, queries, frames
    "mid": (MID_TEXT, MID_VISION, 16, 512, 16),
}


def _settings(model, tokens: int, every: int) -> GenerationSettings:
    fixed = fixed_length(model, tokens)
    return GenerationSettings(tokens, stop_ids=fixed.stop_ids, stop_check_every=every)


def ask(model, video: torch.Tensor, shared: bool, caption_tokens: int, tag_tokens: int):
    """(captions, tag lists) the shared way or from scratch."""
    every = 8 if shared else 1
    with torch.inference_mode():
        prefix = model.share_prefix(video, [CAPTION_PROMPT, TAG_PROMPT]) if shared else None
        captions = model.caption(video, CAPTION_PROMPT, _settings(model, caption_tokens, every),
                                 prefix)  # fmt: skip
        tags = model.generate_tags(video, TAG_PROMPT, _settings(model, tag_tokens, every), prefix)
    return [c.text for c in captions], [t.tags for t in tags]


def prefill_flops_per_clip(model, video: torch.Tensor, shared: bool) -> float:
    """FLOPs of both questions' prefill, per clip: a 1-token answer is its prefill alone."""
    with FlopCounterMode(display=False) as counter:
        ask(model, video, shared, 1, 1)
    return counter.get_total_flops() / video.shape[0]


def measure(name: str, batch: int, repeats: int) -> dict[str, Any]:
    text, vision, group, queries, frames = SIZES[name]
    torch.manual_seed(0)
    model = build_model(text, vision, group, queries, "cpu", torch.float32)
    size = model.config.image_size
    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 256, (frames, size, size, 3), np.uint8) for _ in range(batch)]
    video = model.encode_frames(clips)
    answers = {mode: ask(model, video, mode == "shared", 64, 32) for mode in ("shared", "scratch")}
    pairs = [
        (median_seconds(lambda: ask(model, video, True, 64, 32), 1, 0),
         median_seconds(lambda: ask(model, video, False, 64, 32), 1, 0))
        for _ in range(repeats + 1)
    ]  # fmt: skip
    shared_s = statistics.median(p[0] for p in pairs[1:])
    scratch_s = statistics.median(p[1] for p in pairs[1:])
    tokens = batch * (64 + 32)
    flops = {mode: prefill_flops_per_clip(model, video, mode == "shared")
             for mode in ("shared", "scratch")}  # fmt: skip
    return {
        "batch": batch, "video_tokens": int(video.shape[1]),
        "tokens_per_s_shared": round(tokens / shared_s, 1),
        "tokens_per_s_scratch": round(tokens / scratch_s, 1),
        "speedup": round(scratch_s / shared_s, 3),
        "prefill_gflops_per_clip_shared": round(flops["shared"] / 1e9, 3),
        "prefill_gflops_per_clip_scratch": round(flops["scratch"] / 1e9, 3),
        "prefill_flops_ratio": round(flops["shared"] / flops["scratch"], 3),
        "identical_answers": answers["shared"] == answers["scratch"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="tiny,mid")
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    flush = torch.set_flush_denormal(True)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, CPU",
        "torch": torch.__version__, "flush_denormal": flush,
    }  # fmt: skip
    for name in args.sizes.split(","):
        results[name] = measure(name, args.batch, args.repeats)
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
