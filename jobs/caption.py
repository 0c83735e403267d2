"""Ray job entry point for a captioning run: `python -m jobs.caption CONFIG [options]`.

`clipnote run` calls the same function in-process; `clipnote submit` runs this module on the
cluster through Ray Jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pipeline.config import ConfigError, build_config

from .options import config_from_cli
from .ray_session import connect
from .report import print_summary


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jobs.caption", description=__doc__)
    parser.add_argument("config", type=Path, nargs="?")
    parser.add_argument("--input")
    parser.add_argument("--output")
    parser.add_argument("--model")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--config-env", help="read the validated config (JSON) from this env var")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.config_env:
            config = build_config(json.loads(os.environ[args.config_env]))
        else:
            config = config_from_cli(args.config, args.input, args.output, args.model, args.sets)
    except (ConfigError, FileNotFoundError) as err:
        print(f"clipnote: {err}", file=sys.stderr)
        return 2
    from pipeline.run import run_pipeline

    connect()
    print_summary(run_pipeline(config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
