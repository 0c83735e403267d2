"""Keeping Ray's native (C++) log lines off the terminal, and everything else on it.

Ray's C++ core runs inside the driver (this process) and writes to file descriptor 2 itself:
its ERROR lines always (such as "actor has constructor arguments in the object store", which
every pipeline run with a restartable actor prints, and which reads like a failure), and some
WARNING lines before its logger starts. No setting stops that for the driver alone:
`RAY_BACKEND_LOG_LEVEL` is inherited by every Ray process, so their log files would lose their
lines as well, and reading it prints a line of its own.

So, once per process and only without `--verbose`, descriptor 2 becomes a pipe that a thread
copies to the real stderr, leaving out the lines in Ray's native log format
(`[2026-12-04 11:41:57,289 E 5199 5199] core_worker.cc:2465: ...`) but for FATAL ones (`F`),
which come just before a process dies. Python's `sys.stderr` is pointed at the real stderr, so
clipnote's own output (progress line, messages, tracebacks) never goes through the pipe and a
terminal stays a terminal. Ray's own log files are untouched.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

NATIVE_LOG_LINE = re.compile(rb"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [TDIWE] \d+ \d+\] ")
"""The start of a native Ray log line below FATAL: `[date time,ms LEVEL pid tid] `."""
_CHUNK = 65536
_DRAIN_S = 2.0
"""At exit, how long the copy may take to pass on what is left (a child of this process that
inherited the pipe keeps it open, so the copy would never see its end)."""
_DECIDED = 48
"""Bytes after a `[` that tell whether a native log starts there (its prefix is about 40)."""
_installed = False


def is_ray_native_log(line: bytes) -> bool:
    """Whether `line` (bytes as written, newline or not) is a Ray C++ log line to leave out."""
    return NATIVE_LOG_LINE.match(line) is not None


def _line_out(line: bytes) -> bytes:
    """A whole line as passed on: without the native log it ends with, if any (a log line
    can follow text still waiting for its newline, such as a progress line being redrawn)."""
    found = NATIVE_LOG_LINE.search(line)
    return line + b"\n" if found is None else line[: found.start()]


def _pass_now(partial: bytes) -> int:
    """How much of a line still being written can be passed on now: all of it, but for a
    native log it holds from its start, or a `[` too close to the end to tell."""
    found = NATIVE_LOG_LINE.search(partial)
    if found is not None:
        return found.start()
    bracket = partial.rfind(b"[")
    return bracket if bracket >= 0 and len(partial) - bracket < _DECIDED else len(partial)


def copy_filtered(read_fd: int, write_fd: int) -> None:
    """Copy `read_fd` to `write_fd` until end of file, without Ray's native log lines; text
    that cannot be part of one is passed on at once, even before its newline."""
    held = b""
    while True:
        chunk = os.read(read_fd, _CHUNK)
        if not chunk:
            break
        *lines, held = (held + chunk).split(b"\n")
        out = b"".join(_line_out(line) for line in lines)
        now = _pass_now(held)
        out, held = out + held[:now], held[now:]
        if out:
            os.write(write_fd, out)
    if held and NATIVE_LOG_LINE.search(held) is None:
        os.write(write_fd, held)


def filter_native_stderr() -> None:
    """From now on, Ray's native log lines written to descriptor 2 do not reach stderr."""
    global _installed
    if _installed:
        return
    _installed = True
    sys.stderr.flush()
    real = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    errors = getattr(sys.stderr, "errors", None) or "backslashreplace"
    sys.stderr = open(real, "w", buffering=1, errors=errors, closefd=False)  # noqa: SIM115
    copier = threading.Thread(
        target=copy_filtered, args=(read_fd, real), name="ray-native-stderr", daemon=True
    )
    copier.start()

    def drain() -> None:  # at exit: what is still in the pipe reaches stderr
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last writer but for children that hold it
        copier.join(timeout=_DRAIN_S)

    atexit.register(drain)
