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

from pipeline.config import build_config
from pipeline.preflight import preflight

from .options import config_from_cli


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jobs.caption", description=__doc__)
    parser.add_argument("config", type=Path, nargs="?")
    parser.add_argument("--input")
    parser.add_argument("--output")
    parser.add_argument("--model")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--config-env", help="read the validated config (JSON) from this env var")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--verbose", action="store_true", help="show Ray's own logs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when committed; 2 for a bad request, 1 for an environment failure (one line)."""
    from rich.console import Console

    from .errors import explain
    from .progress import run_with_display

    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.config_env:
            config = build_config(json.loads(os.environ[args.config_env]))
        else:
            config = config_from_cli(args.config, args.input, args.output, args.model, args.sets)
        preflight(config)
        run_with_display(config, Console(), verbose=args.verbose)
    except Exception as exc:
        if args.debug:
            raise
        message, code = explain(exc)
        print(f"clipnote: {message}", file=sys.stderr)
        return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
