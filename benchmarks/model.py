"""Model benchmarks: batched vs one-by-one captioning, vectorised vs per-group resampler.

    python -m benchmarks.model                 # CPU: tiny model + resampler at several sizes
    python -m benchmarks.model --full-size     # + Qwen2.5-3B / SigLIP-so400m shapes (GPU)

Every number is the median of repeated runs; every ratio compares two variants measured in the
same process on the same inputs. Random weights: speed does not depend on what they say.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from model import TinyLlavaVideo, build_prompt, parse_config, tokenize_with_video
from model.configuration import ResamplerConfig
from model.generation import GenerationSettings, generate_ids
from model.resampler import GroupResampler

FULL_TEXT = {
    "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 2048,
    "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16,
    "num_key_value_heads": 2, "max_position_embeddings": 32768, "rope_theta": 1000000.0,
    "tie_word_embeddings": True, "rms_norm_eps": 1e-6,
}  # fmt: skip
FULL_VISION = {
    "model_type": "siglip_vision_model", "hidden_size": 1152, "intermediate_size": 4304,
    "num_hidden_layers": 27, "num_attention_heads": 16, "image_size": 384, "patch_size": 14,
    "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6,
}  # fmt: skip
TINY_TEXT = {
    "model_type": "qwen2", "vocab_size": 512, "hidden_size": 128, "intermediate_size": 384,
    "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
    "tie_word_embeddings": True,
}  # fmt: skip
TINY_VISION = {
    "model_type": "siglip_vision_model", "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 64, "patch_size": 16,
}  # fmt: skip


def median_seconds(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build_model(text: dict, vision: dict, group: int, queries: int, device, dtype):
    from model import load_tokenizer
    from model.checkpoint import TOY_CHECKPOINT_DIR

    raw = {
        "model_type": "tinyllava", "connector_type": "groupresampler", "num_queries": queries,
        "group": group, "num_resampler_layers": 3, "text_config": text, "vision_config": vision,
    }  # fmt: skip
    with torch.device(device):
        model = TinyLlavaVideo(parse_config(raw), load_tokenizer(TOY_CHECKPOINT_DIR))
    return model.to(dtype).eval()


def bench_captioning(model, frames: int, clips: int, batch: int, tokens: int, repeats: int):
    """clips/s captioning `clips` clips in batches of `batch` vs one at a time."""
    rng = np.random.default_rng(0)
    size = model.config.image_size
    data = [rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8) for _ in range(clips)]
    settings = fixed_length(model, tokens)
    prompt = tokenize_with_video(build_prompt("Describe the video."), model.tokenizer)

    def run(step: int) -> None:
        with torch.inference_mode():
            for i in range(0, clips, step):
                video = model.encode_frames(data[i : i + step])
                generate_ids(model, video, [prompt] * video.shape[0], settings)

    batched = median_seconds(lambda: run(batch), repeats)
    single = median_seconds(lambda: run(1), repeats)
    return {"clips_per_s_batched": clips / batched, "clips_per_s_single": clips / single,
            "speedup": single / batched}  # fmt: skip


def fixed_length(model, tokens: int) -> GenerationSettings:
    """Settings whose answers are exactly `tokens` long: the stop id is one past the vocabulary,
    which the model can never pick. Its logits stay as they are (no offset on any of them), so
    the work measured is the work of a real answer."""
    unreachable = model.language_model.get_output_embeddings().weight.shape[0]
    return GenerationSettings(max_new_tokens=tokens, stop_ids=(unreachable,))


def fixed_length_answers(model, batch: int, tokens: int) -> list[list[int]]:
    """The benchmark's own answers for a seeded batch (a test checks their length)."""
    video, prompt = _seeded_video(model, batch)
    return generate_ids(model, video, [prompt] * batch, fixed_length(model, tokens))


def _seeded_video(model, batch: int) -> tuple[torch.Tensor, list[int]]:
    rng = np.random.default_rng(0)
    size = model.config.image_size
    clips = [rng.integers(0, 256, (8, size, size, 3), dtype=np.uint8) for _ in range(batch)]
    prompt = tokenize_with_video(build_prompt("Describe the video."), model.tokenizer)
    return model.encode_frames(clips), prompt


def bench_generation_vs_transformers(model, batch: int, tokens: int, repeats: int) -> dict:
    """tokens/s of `generate_ids` against transformers' `generate()` on the same prompt
    embeddings, greedy, both exactly `tokens` long (no stop reachable), in one process."""
    video, prompt = _seeded_video(model, batch)
    settings = fixed_length(model, tokens)
    lm = model.language_model
    lm.generation_config.eos_token_id = None  # transformers: run to max_new_tokens as well

    def ours() -> None:
        generate_ids(model, video, [prompt] * batch, settings)

    def theirs() -> None:
        with torch.inference_mode():
            embedded = model.embed_prompts([prompt] * batch, video)
            out = lm.generate(
                inputs_embeds=embedded.embeds, attention_mask=embedded.attention_mask,
                max_new_tokens=tokens, do_sample=False, pad_token_id=0,
            )  # fmt: skip
            assert out.shape[1] == tokens, out.shape

    # Interleaved, one of each per repeat (the first pair is the warm-up): a busy machine
    # slows both alike.
    pairs = [(median_seconds(ours, 1, 0), median_seconds(theirs, 1, 0)) for _ in range(repeats)]
    mine = statistics.median(p[0] for p in pairs[1:] or pairs)
    reference = statistics.median(p[1] for p in pairs[1:] or pairs)
    return {"tokens_per_s": batch * tokens / mine,
            "tokens_per_s_transformers": batch * tokens / reference,
            "ratio": reference / mine}  # fmt: skip


def bench_resampler(frames, tokens_per_frame, vision_dim, dim, group, queries, batch, device,
                    dtype, repeats):  # fmt: skip
    config = ResamplerConfig("groupresampler", vision_dim, dim, queries, 3, group)
    with torch.device(device):
        module = GroupResampler(config).to(dtype).eval()
        x = torch.randn(batch, frames * tokens_per_frame, vision_dim, dtype=dtype)
    with torch.inference_mode():
        vec = median_seconds(lambda: module(x), repeats)
        loop = median_seconds(lambda: module.forward_per_group(x), repeats)
    return {"vectorised_ms": vec * 1e3, "per_group_loop_ms": loop * 1e3, "speedup": loop / vec}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--full-size", action="store_true", help="Qwen2.5-3B/SigLIP shapes")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)  # random weights, the same every run
    # Denormals in random-weight activations would take a slow path on x86 CPUs that real
    # weights rarely hit; flushing them to zero keeps the CPU numbers about the real work.
    flush = torch.set_flush_denormal(True)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
        + (torch.cuda.get_device_name() if device.type == "cuda" else "CPU"),
        "torch": torch.__version__,
        "flush_denormal": flush,
        "load_average": os.getloadavg(),
    }
    tiny = build_model(TINY_TEXT, TINY_VISION, group=8, queries=16, device=device, dtype=dtype)
    for batch in (1, 8, 16):
        results[f"generate_tiny_b{batch}_64tok_vs_transformers"] = bench_generation_vs_transformers(
            tiny, batch, 64, args.repeats
        )
    results["caption_tiny_8f_16clips_b8_24tok"] = bench_captioning(
        tiny, frames=8, clips=16, batch=8, tokens=24, repeats=args.repeats
    )
    for name, shape in {
        "resampler_tiny_8f": (8, 15, 64, 128, 8, 16, 8),
        "resampler_mid_16f": (16, 63, 256, 512, 16, 128, 4),
        "resampler_full_16f": (16, 728, 1152, 2048, 16, 512, 1),
    }.items():
        results[name] = bench_resampler(*shape, device, dtype, max(3, args.repeats // 2))
    if args.full_size:
        full = build_model(FULL_TEXT, FULL_VISION, 16, 512, device, dtype)
        results["caption_full_16f_32clips_b8_32tok"] = bench_captioning(
            full, frames=16, clips=32, batch=8, tokens=32, repeats=3
        )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
