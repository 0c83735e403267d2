"""The run configuration: one YAML file, validated before any cluster work starts.

Unknown keys and bad values are errors that name the field (`clips.length_s: ...`). Command
line overrides (`--set clips.length_s=5`) are applied to the YAML before validation, so they
are checked the same way.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator

from pipeline.annotate.prompts import PromptSettings
from pipeline.clips.sampling import SamplingConfig
from pipeline.clips.windows import ClipConfig
from pipeline.config_errors import describe_validation, describe_yaml
from pipeline.core.errors import ConfigError
from pipeline.core.storage import StorageOptions
from pipeline.core.strict import _Strict
from pipeline.decode.isolation import DecodeLimits
from pipeline.input.locations import normalize_location
from pipeline.output.layout import RUN_ID_PATTERN

TOY_MODEL = "toy"
"""`model.source` naming the toy checkpoint shipped inside the package (the default)."""


class StorageSettings(_Strict):
    endpoint_url: str | None = None
    region: str | None = None

    def options(self) -> StorageOptions:
        return StorageOptions(endpoint_url=self.endpoint_url, region=self.region)


class ModelSettings(_Strict):
    source: str = TOY_MODEL
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_size: int = Field(8, ge=1, le=1024)
    max_new_tokens: int = Field(64, ge=1, le=4096)
    tag_max_new_tokens: int = Field(32, ge=1, le=1024)
    stop_check_every: int = Field(8, ge=1, le=4096)
    """Generated tokens between checks whether every answer in a batch has ended: each check
    makes the host wait for the GPU. Answers do not depend on it, so it is no part of the
    fingerprint; a larger value keeps a GPU busier and computes a few tokens nobody reads."""

    @field_validator("source")
    @classmethod
    def _location(cls, value: str) -> str:
        return value.strip() if value.strip() == TOY_MODEL else normalize_location(value)


class ResourceSettings(_Strict):
    decode_cpus: float = Field(1.0, gt=0)
    annotate_actors: int = Field(1, ge=1)
    cpus_per_actor: float = Field(1.0, gt=0)
    gpus_per_actor: float | None = Field(None, ge=0)
    """None: one GPU per actor for any checkpoint but the toy (which takes one only when the
    cluster has GPUs); 0 runs the model on CPUs, which must be asked for (`annotate/device.py`)."""


class DecodeBudget(_Strict):
    """Each video's decode budget and isolation (pipeline/isolation.py says why)."""

    timeout_s: float = Field(3600.0, gt=0)
    """Wall-clock seconds one video may take, all its clips together."""
    stall_s: float = Field(300.0, gt=0)
    """Seconds without a decoded clip after which the decoder counts as hung."""
    max_memory_mb: int = Field(3072, ge=64)
    """Resident memory of one video's decoder process (4K H.264/HEVC needs ~1 GB)."""
    isolate: bool = True
    """Decode each video in a supervised child process (a crash costs that video only)."""
    max_retries: int = Field(2, ge=0, le=100)
    """Ray retries of a decode task whose worker died (finite: a poison video cannot loop)."""
    spill_mb: int = Field(64, ge=0)
    """Objects larger than this are spilled to local scratch disk, not held in memory."""
    scratch_dir: str | None = None
    """Where spilled videos go (None: the system temp folder)."""
    max_clips: int = Field(100_000, ge=1)
    """Clips one video may give (its first ones are kept, then an error row says why): one
    small file whose timestamps claim days must not claim days of GPU time."""

    def limits(self) -> DecodeLimits:
        return DecodeLimits(**self.model_dump(exclude={"max_clips"}))


class OutputSettings(_Strict):
    thumbnail_size: int = Field(96, ge=16, le=1024)
    rows_per_file: int = Field(10000, ge=1)


class CommitSettings(_Strict):
    """How output is committed: in chunks, under a lease, old attempts kept for a while."""

    chunk_videos: int = Field(500, ge=1)
    """Commit once this many videos are complete..."""
    chunk_seconds: float = Field(300.0, gt=0)
    """...or this long after the previous commit, whichever comes first."""
    grace_s: float = Field(3600.0, ge=0)
    """Files of a replaced attempt stay this long, for readers that listed them."""
    lease_ttl_s: float = Field(600.0, ge=5)
    """A writer that stops renewing its lease for this long is presumed dead."""


class RunConfig(_Strict):
    input: str
    output: str
    run_id: str | None = Field(None, pattern=rf"^{RUN_ID_PATTERN}$")
    storage: StorageSettings = StorageSettings()
    clips: ClipConfig = ClipConfig()
    sampling: SamplingConfig = SamplingConfig()
    model: ModelSettings = ModelSettings()
    prompts: PromptSettings = PromptSettings()
    resources: ResourceSettings = ResourceSettings()
    output_options: OutputSettings = OutputSettings()
    decode: DecodeBudget = DecodeBudget()
    commit: CommitSettings = CommitSettings()

    @field_validator("input", "output")
    @classmethod
    def _location(cls, value: str) -> str:
        return normalize_location(value)


ClipConfig.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]


SamplingConfig.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: '{key}' is not a section")
        node = child
    node[keys[-1]] = value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`["clips.length_s=5", "prompts.taxonomy=[dog, cat]"]` -> nested dict (YAML values)."""
    tree: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][\w.]*", key.strip()):
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. clips.length_s=5")
        _set_dotted(tree, key.strip(), yaml.safe_load(raw) if raw.strip() else "")
    return tree


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def build_config(raw: dict[str, Any], overrides: dict[str, Any] | None = None) -> RunConfig:
    """Validate a config tree (plus overrides) into a `RunConfig`, or `ConfigError`."""
    if not isinstance(raw, dict):
        raise ConfigError("config must be a YAML mapping of sections")
    try:
        return RunConfig.model_validate(_merge(raw, overrides or {}))
    except ValidationError as err:
        raise ConfigError(describe_validation(err, RunConfig)) from None


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a YAML config file (None: defaults only) and validate it with overrides."""
    raw: Any = {}
    if path is not None:
        text = Path(path).read_text()
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise ConfigError(describe_yaml(path, err)) from None
    return build_config(raw, overrides)
