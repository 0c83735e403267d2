"""Turning command-line options into a validated `RunConfig` (before any cluster work)."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import ConfigError, RunConfig, load_config, parse_overrides


def config_from_cli(
    config_path: Path | None,
    input_uri: str | None = None,
    output_uri: str | None = None,
    model_uri: str | None = None,
    sets: list[str] | None = None,
) -> RunConfig:
    """YAML file, then `--set key=value` items, then the named shortcuts, all validated."""
    if config_path is not None and not Path(config_path).is_file():
        raise ConfigError(f"config: no such file: {config_path}")
    overrides = parse_overrides(list(sets or []))
    for key, value in (("input", input_uri), ("output", output_uri)):
        if value is not None:
            overrides[key] = value
    if model_uri is not None:
        overrides.setdefault("model", {})["source"] = model_uri
    return load_config(config_path, overrides)


def add_config_arguments(parser) -> None:
    """The options every job entry point takes (argparse), as `clipnote run` does."""
    parser.add_argument("config", type=Path, nargs="?")
    parser.add_argument("--input")
    parser.add_argument("--output")
    parser.add_argument("--model")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--config-env", help="read the validated config (JSON) from this env var")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--verbose", action="store_true", help="show Ray's own logs")


def config_from_args(args) -> RunConfig:
    """The config a job entry point was given: from `--config-env` (what `clipnote submit`
    sends) or from the file and options, validated either way."""
    import json
    import os

    from pipeline.config import build_config

    if args.config_env:
        return build_config(json.loads(os.environ[args.config_env]))
    return config_from_cli(args.config, args.input, args.output, args.model, args.sets)
