"""A seam in the supervised decode child that tests can use, with no test code behind it.

The isolation tests need videos whose decoder really crashes (SIGSEGV) or hangs, and no real
file does that to today's FFmpeg on demand. So before it decodes, the child calls the function
that `CLIPNOTE_DECODE_HOOK` names (`package.module:function`, called with the `VideoRef`); the
tests name theirs (`tests/pipeline/decode/faults.py`, set in `tests/conftest.py`). Unset, as it
is outside the tests, it costs one environment lookup per video and nothing is imported.

Why the environment: the child is forked from a forkserver, inside a Ray worker during a run,
so nothing a test installs in its own interpreter reaches it; the environment does, because
the forkserver and Ray's workers inherit it from the process that starts them (set it before
either starts). The child imports the named module with the parent's `sys.path`.
"""

from __future__ import annotations

import importlib
import os

from pipeline.core.records import VideoRef

DECODE_HOOK_ENV = "CLIPNOTE_DECODE_HOOK"


def run_decode_hook(ref: VideoRef) -> None:
    """Call the hook `DECODE_HOOK_ENV` names on `ref`, if it names one."""
    spec = os.environ.get(DECODE_HOOK_ENV)
    if not spec:
        return
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"{DECODE_HOOK_ENV}={spec!r}: expected package.module:function")
    getattr(importlib.import_module(module), name)(ref)
