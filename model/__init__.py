"""TinyLLaVA-Video for clipnote: configuration, modeling, processing, checkpoint loading.

This package never imports `pipeline` or `jobs`. Its names are imported on first use, so a
process that only needs `model.remote` (reading object storage), `model.configuration`,
`model.processing` (`FrameProcessor` as data) or `model.checkpoint` (weight files, their digest,
`CheckpointError`) does not pay for importing torch and transformers.

The captioning API: `video = model.encode_frames(clips)` once, then `model.caption(video, ...)`,
`model.generate_tags(video, ...)` and `model.score_tags(video, taxonomy, ...)` (`modeling`).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "IMAGE_TOKEN_INDEX": "configuration",
    "Answer": "generation",
    "CheckpointError": "checkpoint",
    "ConfigError": "configuration",
    "FrameProcessor": "processing",
    "GenerationSettings": "generation",
    "TagList": "tags",
    "TagScores": "tags",
    "TinyLlavaVideo": "modeling",
    "TinyLlavaVideoConfig": "configuration",
    "build_prompt": "processing",
    "load_model": "loading",
    "load_tokenizer": "loading",
    "parse_config": "configuration",
    "parse_tags": "tags",
    "save_checkpoint": "checkpoint",
    "tokenize_with_video": "processing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'model' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
