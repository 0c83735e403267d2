"""TinyLLaVA-Video for clipnote: configuration, modeling, processing, checkpoint loading.

This package never imports `pipeline` or `jobs`. Its names are imported on first use, so a
process that only needs `model.remote` (reading object storage) or `model.configuration`
does not pay for importing torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "IMAGE_TOKEN_INDEX": "configuration",
    "CheckpointError": "checkpoint",
    "ConfigError": "configuration",
    "FrameProcessor": "processing",
    "GenerationSettings": "generation",
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
