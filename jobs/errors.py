"""Turning what a user can get wrong into one line and an exit code, not a traceback.

Exit 2: the request is wrong (bad config, missing input or checkpoint, bad SQL). Exit 1: the world
refused (unreachable endpoint or cluster, denied bucket, wrong credentials, output not
writable, a run already being written). Anything else is a bug: one line saying so, and
`--debug` shows the traceback.

The code comes from the exception's type alone (`pipeline.core.errors`), never from its text.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from pipeline.core.errors import BAD_REQUEST, ENVIRONMENT, ClipnoteError

MODEL_ERRORS: tuple[tuple[str, str, int], ...] = (
    ("model.checkpoint", "CheckpointError", BAD_REQUEST),
    ("model.configuration", "ConfigError", BAD_REQUEST),
    ("model.remote", "FetchError", ENVIRONMENT),
)
"""(module, class, exit code) of the model's own errors: `model/` never imports the pipeline,
so they are mapped here. They are looked up among the modules already imported: an error of
a class can only exist once its module is, and explaining a typo in a config must not import
torch (which loading a checkpoint does)."""


def exit_code_of(exc: BaseException) -> int | None:
    """The exit code `exc`'s type stands for, or None for an unexpected error (a bug)."""
    if isinstance(exc, ClipnoteError):
        return exc.exit_code
    for module_name, class_name, code in MODEL_ERRORS:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(exc, getattr(module, class_name)):
            return code
    return None


def explain(exc: BaseException) -> tuple[str, int]:
    """(one-line message, exit code) for any exception that reached the command line."""
    if isinstance(exc, ClipnoteError):
        return exc.user_message(), exc.exit_code
    code = exit_code_of(exc)
    if code is not None:
        return str(exc), code
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
