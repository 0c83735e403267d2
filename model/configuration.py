"""The TinyLLaVA-Video configuration, read from a published `config.json`.

Published checkpoints carry one composite config: top-level connector and feature-selection
fields plus embedded `text_config` (Qwen2) and `vision_config` (SigLIP vision). The
`*_name_or_path` fields name the authors' own disks; they are kept as data and never resolved.

transformers (and with it torch) is imported when a config is parsed, not when this module is:
the placeholder id, `ConfigError` and `ResamplerConfig` are plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import Qwen2Config, SiglipVisionConfig

IMAGE_TOKEN_INDEX = -200
"""Placeholder id marking where the video's tokens go in `input_ids` (as published)."""

CONNECTOR_TYPES = ("groupresampler", "naiveresampler")
TEXT_MODEL_TYPES = ("qwen2",)
VISION_MODEL_TYPES = ("siglip_vision_model", "siglip")
SELECT_STRATEGIES = ("patch", "cls_patch")
PADDING_SIDES = ("left", "right")


class ConfigError(ValueError):
    """A checkpoint config that clipnote cannot or will not load; the message names the field."""


@dataclass(frozen=True)
class ResamplerConfig:
    """Shape of the connector between the vision tower and the language model."""

    connector_type: str
    vision_hidden_size: int
    hidden_size: int
    num_queries: int
    num_layers: int
    group: int = 1

    @property
    def queries_per_group(self) -> int:
        return self.num_queries // self.group


@dataclass(frozen=True)
class TinyLlavaVideoConfig:
    """Everything needed to build the model, validated; `raw` is the config.json as read."""

    text_config: Qwen2Config
    vision_config: SiglipVisionConfig
    resampler: ResamplerConfig
    vision_feature_layer: int = -2
    vision_feature_select_strategy: str = "patch"
    tokenizer_padding_side: str = "right"
    tokenizer_model_max_length: int | None = 2048
    pad_token_id: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def hidden_size(self) -> int:
        return self.text_config.hidden_size

    @property
    def image_size(self) -> int:
        return self.vision_config.image_size

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TinyLlavaVideoConfig:
        return parse_config(raw)

    def to_dict(self) -> dict[str, Any]:
        return config_to_published_dict(self)


def _require(raw: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in raw or raw[key] is None:
        raise ConfigError(f"config.json: missing required field '{key}'")
    value = raw[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"config.json: field '{key}' must be {kind}, got {value!r}")
    return value


def _check_no_remote_code(raw: dict[str, Any], where: str) -> None:
    """Refuse configs that ask for code shipped with the checkpoint to be imported."""
    for key in ("auto_map", "trust_remote_code", "custom_pipelines"):
        if raw.get(key):
            raise ConfigError(
                f"{where}: field '{key}' asks to run code shipped with the checkpoint "
                f"({raw[key]!r}); clipnote never executes checkpoint code. Use a checkpoint "
                "whose config names a built-in architecture (model_type 'tinyllava')."
            )


def _text_config(raw: dict[str, Any]) -> Qwen2Config:
    from transformers import Qwen2Config

    sub = _require(raw, "text_config", dict)
    _check_no_remote_code(sub, "config.json text_config")
    model_type = sub.get("model_type")
    if model_type not in TEXT_MODEL_TYPES:
        raise ConfigError(
            f"config.json: text_config.model_type {model_type!r} is not supported "
            f"(supported: {', '.join(TEXT_MODEL_TYPES)})"
        )
    fields = {k: v for k, v in sub.items() if not k.startswith("_") and k != "model_type"}
    return Qwen2Config(**fields)


def _vision_config(raw: dict[str, Any]) -> SiglipVisionConfig:
    from transformers import SiglipVisionConfig

    sub = _require(raw, "vision_config", dict)
    _check_no_remote_code(sub, "config.json vision_config")
    model_type = sub.get("model_type")
    if model_type not in VISION_MODEL_TYPES:
        raise ConfigError(
            f"config.json: vision_config.model_type {model_type!r} is not supported "
            f"(supported: {', '.join(VISION_MODEL_TYPES)})"
        )
    if model_type == "siglip" and isinstance(sub.get("vision_config"), dict):
        sub = sub["vision_config"]
    fields = {k: v for k, v in sub.items() if not k.startswith("_") and k != "model_type"}
    return SiglipVisionConfig(**fields)


def _resampler_config(
    raw: dict[str, Any], text: Qwen2Config, vision: SiglipVisionConfig
) -> ResamplerConfig:
    connector_type = raw.get("connector_type")
    if connector_type not in CONNECTOR_TYPES:
        raise ConfigError(
            f"config.json: connector_type {connector_type!r} is not supported "
            f"(supported: {', '.join(CONNECTOR_TYPES)})"
        )
    num_queries = _require(raw, "num_queries", int)
    num_layers = _require(raw, "num_resampler_layers", int)
    group = _require(raw, "group", int) if connector_type == "groupresampler" else 1
    if num_queries <= 0 or num_layers <= 0 or group <= 0:
        raise ConfigError("config.json: num_queries, num_resampler_layers, group must be > 0")
    if num_queries % group:
        raise ConfigError(
            f"config.json: num_queries ({num_queries}) must be a multiple of group ({group})"
        )
    if text.hidden_size % 2:
        raise ConfigError("config.json: text_config.hidden_size must be even (sinusoidal PE)")
    vision_hidden = raw.get("vision_hidden_size") or vision.hidden_size
    if vision_hidden != vision.hidden_size:
        raise ConfigError(
            f"config.json: vision_hidden_size {vision_hidden} != "
            f"vision_config.hidden_size {vision.hidden_size}"
        )
    return ResamplerConfig(
        connector_type=connector_type,
        vision_hidden_size=vision.hidden_size,
        hidden_size=text.hidden_size,
        num_queries=num_queries,
        num_layers=num_layers,
        group=group,
    )


def parse_config(raw: dict[str, Any]) -> TinyLlavaVideoConfig:
    """Validate a published TinyLLaVA-Video config.json and build the typed config."""
    if not isinstance(raw, dict):
        raise ConfigError("config.json must hold a JSON object")
    _check_no_remote_code(raw, "config.json")
    if raw.get("model_type") != "tinyllava":
        raise ConfigError(
            f"config.json: model_type must be 'tinyllava', got {raw.get('model_type')!r}"
        )
    text = _text_config(raw)
    vision = _vision_config(raw)
    strategy = raw.get("vision_feature_select_strategy", "patch")
    if strategy not in SELECT_STRATEGIES:
        raise ConfigError(f"config.json: vision_feature_select_strategy {strategy!r} unknown")
    layer = raw.get("vision_feature_layer", -2)
    n_layers = vision.num_hidden_layers
    if not isinstance(layer, int) or not -(n_layers + 1) <= layer <= n_layers:
        raise ConfigError(f"config.json: vision_feature_layer {layer!r} out of range")
    padding = raw.get("tokenizer_padding_side", "right")
    if padding not in PADDING_SIDES:
        raise ConfigError(f"config.json: tokenizer_padding_side {padding!r} unknown")
    return TinyLlavaVideoConfig(
        text_config=text,
        vision_config=vision,
        resampler=_resampler_config(raw, text, vision),
        vision_feature_layer=layer,
        vision_feature_select_strategy=strategy,
        tokenizer_padding_side=padding,
        tokenizer_model_max_length=raw.get("tokenizer_model_max_length"),
        pad_token_id=raw.get("pad_token_id"),
        raw=dict(raw),
    )


def config_to_published_dict(config: TinyLlavaVideoConfig) -> dict[str, Any]:
    """The config.json a published checkpoint carries (fields as upstream writes them)."""
    text = config.text_config.to_dict()
    vision = config.vision_config.to_dict()
    res = config.resampler
    out = {
        "architectures": ["TinyLlavaForConditionalGeneration"],
        "model_type": "tinyllava",
        "connector_type": res.connector_type,
        "hidden_size": config.hidden_size,
        "vocab_size": config.text_config.vocab_size,
        "vision_hidden_size": res.vision_hidden_size,
        "num_queries": res.num_queries,
        "group": res.group if res.connector_type == "groupresampler" else None,
        "num_resampler_layers": res.num_layers,
        "resampler_hidden_size": None,
        "vision_feature_layer": config.vision_feature_layer,
        "vision_feature_select_strategy": config.vision_feature_select_strategy,
        "image_aspect_ratio": "square",
        "image_token_index": IMAGE_TOKEN_INDEX,
        "ignore_index": -100,
        "tokenizer_padding_side": config.tokenizer_padding_side,
        "tokenizer_model_max_length": config.tokenizer_model_max_length,
        "tokenizer_use_fast": False,
        "pad_token_id": config.pad_token_id,
        "use_cache": True,
        "text_config": text,
        "vision_config": vision,
    }
    keep = {k: v for k, v in config.raw.items() if k not in out and k != "auto_map"}
    return {**keep, **out}
