"""What the driver needs to know about a checkpoint without loading it: input size, frames.

Reads only `config.json` and `preprocessor_config.json` (a few KB, also from `s3://`), so
the driver can plan decode before any actor downloads the weights. Neither importing this
module nor describing a checkpoint imports torch: `FrameProcessor` is plain data until frames
go through it, and the few fields the driver needs are read from the JSON itself, because
transformers' config classes (`model.configuration.parse_config`) import torch, seconds of a
short run's start. The full validation runs where the model loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from model.checkpoint import TOY_CHECKPOINT_DIR
from model.configuration import VISION_MODEL_TYPES, ConfigError
from model.processing import FrameProcessor
from pipeline.core.storage import StorageOptions, filesystem, is_remote, join, strip_scheme

PUBLISHED_NUM_FRAMES = 16


@dataclass(frozen=True)
class CheckpointInfo:
    processor: FrameProcessor
    num_frames: int


def toy_checkpoint_dir() -> Path:
    """The toy checkpoint shipped inside the package (the embedded default model)."""
    return TOY_CHECKPOINT_DIR


def resolve_model_source(source: str) -> str:
    return str(toy_checkpoint_dir()) if source == "toy" else source


def _read_json(root: str, name: str, options: StorageOptions) -> dict | None:
    fs = filesystem(root, options)
    path = strip_scheme(join(root, name))
    if not fs.exists(path):
        return None
    with fs.open(path, "r") as fh:
        return json.load(fh)


def describe_checkpoint(source: str, options: StorageOptions | None = None) -> CheckpointInfo:
    """Input size, resampling and trained frame count of the checkpoint at `source`."""
    options = options or StorageOptions()
    raw = _read_json(source, "config.json", options)
    if raw is None:
        where = source if is_remote(source) else str(Path(source).resolve())
        raise FileNotFoundError(f"{where}: no config.json (not a checkpoint)")
    image_size = _image_size(raw)
    frames = (raw.get("clipnote") or {}).get("num_frames") or PUBLISHED_NUM_FRAMES
    pre = _read_json(source, "preprocessor_config.json", options)
    processor = FrameProcessor.from_json_dict(pre, image_size)
    return CheckpointInfo(processor=processor, num_frames=int(frames))


_REMOTE_CODE_KEYS = ("auto_map", "trust_remote_code", "custom_pipelines")
_SIGLIP_IMAGE_SIZE = 224
"""transformers' `SiglipVisionConfig` default, when a vision config names no size."""


def _image_size(raw: dict) -> int:
    """The vision tower's input size from a config.json, with the checks a driver can make
    without transformers (model type, no checkpoint code, the size itself)."""
    if not isinstance(raw, dict) or raw.get("model_type") != "tinyllava":
        kind = raw.get("model_type") if isinstance(raw, dict) else type(raw).__name__
        raise ConfigError(f"config.json: model_type must be 'tinyllava', got {kind!r}")
    vision = raw.get("vision_config")
    for where, part in (("config.json", raw), ("config.json vision_config", vision)):
        for key in _REMOTE_CODE_KEYS:
            if isinstance(part, dict) and part.get(key):
                raise ConfigError(f"{where}: field '{key}' asks to run checkpoint code")
    if not isinstance(vision, dict) or vision.get("model_type") not in VISION_MODEL_TYPES:
        kind = vision.get("model_type") if isinstance(vision, dict) else None
        raise ConfigError(f"config.json: vision_config.model_type {kind!r} is not supported")
    if vision["model_type"] == "siglip" and isinstance(vision.get("vision_config"), dict):
        vision = vision["vision_config"]
    size = vision.get("image_size", _SIGLIP_IMAGE_SIZE)
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ConfigError(f"config.json: vision_config.image_size {size!r} is not a size")
    return size
