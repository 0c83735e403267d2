"""Ray job entry point for a captioning run: `python -m jobs.caption CONFIG [options]`.

`clipnote run` calls the same function in-process; `clipnote submit` runs this module on the
cluster through Ray Jobs.
"""

from __future__ import annotations

import argparse
import sys

from jobs.options import add_config_arguments, config_from_args
from pipeline.preflight import preflight


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jobs.caption", description=__doc__)
    add_config_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when committed; 2 for a bad request, 1 for an environment failure (one line)."""
    from rich.console import Console

    from jobs.errors import exit_code
    from jobs.progress import run_with_display

    args = parse_args(sys.argv[1:] if argv is None else argv)

    def work() -> None:
        config = config_from_args(args)
        preflight(config)
        run_with_display(config, Console(), verbose=args.verbose)

    return exit_code(work, args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
