"""Turning what a user can get wrong into one line and an exit code, not a traceback.

Exit 2: the request is wrong (bad config, missing input or checkpoint, bad SQL). Exit 1: the world
refused (unreachable endpoint or cluster, denied bucket, wrong credentials, output not
writable, a run already being written). Anything else is a bug: one line saying so, and
`--debug` shows the traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from jobs.query import QueryError
from model.checkpoint import CheckpointError
from model.remote import FetchError
from pipeline.config import ConfigError
from pipeline.core.errors import CommitError, RunLocked
from pipeline.input.problems import SourceError
from pipeline.preflight import BAD_INPUT, ENVIRONMENT, Problem

_BAD_INPUT = (ConfigError, CheckpointError, QueryError)
_ENVIRONMENT = (CommitError, RunLocked, FetchError)


def explain(exc: BaseException) -> tuple[str, int]:
    """(one-line message, exit code) for any exception that reached the command line."""
    if isinstance(exc, Problem):
        return exc.message, exc.exit_code
    if isinstance(exc, _BAD_INPUT):
        return str(exc), BAD_INPUT
    if isinstance(exc, SourceError):
        code = BAD_INPUT if "not found" in str(exc) or "unsupported" in str(exc) else ENVIRONMENT
        return f"input: {exc}", code
    if isinstance(exc, _ENVIRONMENT):
        return str(exc), ENVIRONMENT
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return (
        f"unexpected error: {type(exc).__name__}: {first_line} (run with --debug for the "
        "traceback)",
        ENVIRONMENT,
    )


def exit_code(work: Callable[[], None], debug: bool = False) -> int:
    """Run a job entry point's work: 0, or one line on stderr and 2/1 (`debug`: raise)."""
    try:
        work()
    except Exception as exc:
        if debug:
            raise
        message, code = explain(exc)
        print(f"clipnote: {message}", file=sys.stderr)
        return code
    return 0
