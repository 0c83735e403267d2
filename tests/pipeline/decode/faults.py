"""Deterministic poison, hanging and slow videos for the isolation tests, the poison benchmark
and the fault trials.

No real file crashes today's FFmpeg on demand, so a small local file that starts with
`FAULT_MAGIC` and then `crash` or `hang` makes the supervised decode child die of a real
SIGSEGV or hang for good. Production code only offers the neutral hook
(`pipeline.decode.hook`); `tests/conftest.py` names `HOOK` in its environment variable, before
any forkserver or Ray starts, so only the tests' decode children ever look.

A video of any size and in any store whose file name carries `.slow-<seconds>s.` decodes that
much later: the fault trials name their videos so, so that chunks commit seconds apart on any
machine and a kill can land between two of them.
"""

from __future__ import annotations

import re
import time

from pipeline.core.records import VideoRef

FAULT_MAGIC = b"clipnote-test-fault:"
HOOK = "tests.pipeline.decode.faults:inject"
"""The value of `pipeline.decode.hook.DECODE_HOOK_ENV` that installs `inject`."""

_MAX_SIZE = 4096  # fault files are a line long: a real video is never even opened here
_SLOW = re.compile(r"\.slow-(\d+(?:\.\d+)?)s\.")


def slow_name(name: str, seconds: float) -> str:
    """`name` marked to decode `seconds` late: `a.mp4` -> `a.slow-2s.mp4`."""
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}.slow-{seconds:g}s{dot}{suffix}" if dot else f"{name}.slow-{seconds:g}s."


def inject(ref: VideoRef) -> None:
    """Wait if `ref`'s name asks to be slow; crash or hang if it is a local fault file;
    otherwise return at once."""
    slow = _SLOW.search(ref.uri.rsplit("/", 1)[-1])
    if slow:
        time.sleep(float(slow.group(1)))
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
