"""TinyLLaVA-Video for clipnote: configuration, modeling, processing, checkpoint loading.

This package never imports `pipeline` or `jobs`.
"""

from .checkpoint import CheckpointError, save_checkpoint
from .configuration import IMAGE_TOKEN_INDEX, ConfigError, TinyLlavaVideoConfig, parse_config
from .generation import GenerationSettings
from .loading import load_model, load_tokenizer
from .modeling import TinyLlavaVideo
from .processing import FrameProcessor, build_prompt, tokenize_with_video
from .tags import parse_tags

__all__ = [
    "IMAGE_TOKEN_INDEX",
    "CheckpointError",
    "ConfigError",
    "FrameProcessor",
    "GenerationSettings",
    "TinyLlavaVideo",
    "TinyLlavaVideoConfig",
    "build_prompt",
    "load_model",
    "load_tokenizer",
    "parse_config",
    "parse_tags",
    "save_checkpoint",
    "tokenize_with_video",
]
