"""Builders shared by tests: tiny published-format configs and random-weight models."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

FIXTURES = Path(__file__).parent / "fixtures"
UPSTREAM = FIXTURES / "upstream"


def tiny_config_dict(
    connector_type: str = "groupresampler",
    group: int = 4,
    num_queries: int = 8,
    image_size: int = 56,
    vocab_size: int = 512,
) -> dict[str, Any]:
    """A published-style config.json body for a model small enough to run in milliseconds."""
    return {
        "architectures": ["TinyLlavaForConditionalGeneration"],
        "model_type": "tinyllava",
        "llm_model_name_or_path": "/data/authors/Qwen2.5-3B",
        "vision_model_name_or_path": "/data/authors/siglip-so400m-patch14-384",
        "connector_type": connector_type,
        "num_queries": num_queries,
        "group": group,
        "num_resampler_layers": 2,
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "patch",
        "tokenizer_padding_side": "right",
        "tokenizer_model_max_length": 3072,
        "text_config": {
            "model_type": "qwen2",
            "vocab_size": vocab_size,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_theta": 1000000.0,
            "tie_word_embeddings": True,
            "_name_or_path": "/data/authors/Qwen2.5-3B",
        },
        "vision_config": {
            "model_type": "siglip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": 14,
            "model_name_or_path": "/data/authors/siglip-so400m-patch14-384",
        },
    }


def randomise_(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial random weights everywhere (default inits hide bugs: unit norms, zero bias)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if param.ndim == 1:
                param.copy_((1 + 0.2 * noise) if name.endswith("weight") else 0.1 * noise)
            else:
                param.copy_(noise / max(param.shape[-1], 1) ** 0.5)


def build_tiny_model(seed: int = 0, **config_kwargs: Any):
    """A random-weight `TinyLlavaVideo` with the fixtures' Qwen2-format tokenizer."""
    from model import TinyLlavaVideo, load_tokenizer, parse_config

    tokenizer = load_tokenizer(UPSTREAM / "ckpt_group")
    model = TinyLlavaVideo(parse_config(tiny_config_dict(**config_kwargs)), tokenizer)
    randomise_(model, seed)
    model.language_model.tie_weights()
    return model.eval()


def encode_frames(
    frames: np.ndarray,
    fps: int,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    container_format: str = "mp4",
    options: dict[str, str] | None = None,
) -> bytes:
    """uint8 RGB frames `[T, H, W, 3]` encoded with any codec/container PyAV has, as bytes.

    libx264 with yuv420p needs even sizes; `options` are the encoder's (e.g. GOP, B-frames).
    """
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        stream.options = options or {}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return buffer.getvalue()
