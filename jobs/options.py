"""Turning command-line options into a validated `RunConfig` (before any cluster work)."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import RunConfig, load_config, parse_overrides


def config_from_cli(
    config_path: Path | None,
    input_uri: str | None = None,
    output_uri: str | None = None,
    model_uri: str | None = None,
    sets: list[str] | None = None,
) -> RunConfig:
    """YAML file, then `--set key=value` items, then the named shortcuts, all validated."""
    overrides = parse_overrides(list(sets or []))
    for key, value in (("input", input_uri), ("output", output_uri)):
        if value is not None:
            overrides[key] = value
    if model_uri is not None:
        overrides.setdefault("model", {})["source"] = model_uri
    return load_config(config_path, overrides)
