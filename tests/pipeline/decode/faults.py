"""Deterministic poison and hanging videos for the isolation tests and the poison benchmark.

No real file crashes today's FFmpeg on demand, so a small local file that starts with
`FAULT_MAGIC` and then `crash` or `hang` makes the supervised decode child die of a real
SIGSEGV or hang for good. Production code only offers the neutral hook
(`pipeline.decode.hook`); `tests/conftest.py` names `HOOK` in its environment variable, before
any forkserver or Ray starts, so only the tests' decode children ever look.
"""

from __future__ import annotations

import time

from pipeline.core.records import VideoRef

FAULT_MAGIC = b"clipnote-test-fault:"
HOOK = "tests.pipeline.decode.faults:inject"
"""The value of `pipeline.decode.hook.DECODE_HOOK_ENV` that installs `inject`."""

_MAX_SIZE = 4096  # fault files are a line long: a real video is never even opened here


def inject(ref: VideoRef) -> None:
    """Crash or hang if `ref` is a local fault file; otherwise return at once."""
    if ref.shard_uri is not None or ref.uri.startswith("s3://") or ref.size > _MAX_SIZE:
        return
    try:
        with open(ref.uri, "rb") as fh:
            head = fh.read(64)
    except OSError:
        return
    if not head.startswith(FAULT_MAGIC):
        return
    fault = head[len(FAULT_MAGIC) :].strip()
    if fault == b"crash":
        import ctypes

        ctypes.string_at(0)  # a real native crash: SIGSEGV
    if fault == b"hang":
        while True:
            time.sleep(1)
