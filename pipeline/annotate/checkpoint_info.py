"""What the driver needs to know about a checkpoint without loading it: input size, frames.

Reads only `config.json` and `preprocessor_config.json` (a few KB, also from `s3://`), so
the driver can plan decode before any actor downloads the weights. Importing this module
imports no torch: `FrameProcessor` is plain data until frames go through it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from model.checkpoint import TOY_CHECKPOINT_DIR
from model.configuration import parse_config
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
    config = parse_config(raw)
    frames = (raw.get("clipnote") or {}).get("num_frames") or PUBLISHED_NUM_FRAMES
    pre = _read_json(source, "preprocessor_config.json", options)
    processor = FrameProcessor.from_json_dict(pre, config.image_size)
    return CheckpointInfo(processor=processor, num_frames=int(frames))
