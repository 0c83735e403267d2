"""Running one video's decode in a supervised child process, within a time and memory budget.

A native decoder can crash (a signal), loop forever or allocate without bound on one bad
file. In the Ray task itself that kills or hangs the worker, and Ray retries the task, so one
file could stall a whole run. Here the work runs in a child process forked from a forkserver
that has already imported the decode stack (a fork costs milliseconds, not an interpreter
start), results stream back over a pipe one at a time, and the parent:
- kills the child when the whole video exceeds `timeout_s`, or when no result has come for
  `stall_s` (a hang is caught long before the video's budget runs out);
- kills the child when its resident memory exceeds `max_memory_mb` (polled), and caps its
  address space so a single huge allocation fails inside the child instead of waking the
  kernel's OOM killer;
- reports a child that died (signal or exit code) as a `Failure` saying what killed it.
Everything the child sent before that is kept: the caller has already passed it on.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing import context, forkserver, popen_forkserver, spawn, util
from typing import Any

from pipeline.core.status import FailureKind

_PAGE = os.sysconf("SC_PAGE_SIZE")
_POLL_S = 0.05
_DONE = "__clipnote_done__"
_PRELOAD = [
    "pipeline.decode.video_rows",
    "torch",  # the frames' resize; decode's modules import it only when they resize
    "av",
    "av.video.frame",
    "PIL.Image",
    "PIL.JpegImagePlugin",
]
_context_lock = threading.Lock()
_context: Any = None


@dataclass(frozen=True)
class DecodeLimits:
    """One video's budget and how its decode is isolated (the config's `decode` section)."""

    timeout_s: float = 3600.0
    stall_s: float = 300.0
    max_memory_mb: int = 3072
    isolate: bool = True
    max_retries: int = 2
    spill_mb: int = 64
    scratch_dir: str | None = None


@dataclass(frozen=True)
class Failure:
    """Why the supervised work ended early; `reason` is written to the error row."""

    reason: str
    kind: FailureKind


class _Popen(popen_forkserver.Popen):
    """Forkserver launch without re-running the parent's `__main__` in the child.

    multiprocessing re-imports the parent's main script in every child so that functions
    defined there unpickle; in a Ray worker that script is Ray's worker entry point, which
    costs a second and must not run twice. Our targets live in modules, so the child skips
    it. (The body is CPython's `popen_forkserver.Popen._launch` with those two keys dropped.)
    """

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_name", None)
        prep_data.pop("init_main_from_path", None)
        buf = io.BytesIO()
        context.set_spawning_popen(self)
        try:
            context.reduction.dump(prep_data, buf)
            context.reduction.dump(process_obj, buf)
        finally:
            context.set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)
        parent_w = os.dup(w)
        self.finalizer = util.Finalize(self, util.close_fds, (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as fh:
            fh.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _Process(context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:
        return _Popen(process_obj)


def _ctx() -> Any:
    """The forkserver context, its server preloaded with the decode stack (once per process)."""
    global _context
    with _context_lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(_PRELOAD)
            _context = ctx
        return _context


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0


def _child(conn: Any, target: Callable[..., Iterator[Any]], args: tuple, cap_mb: int) -> None:
    """Child body: cap the address space, run `target`, send each item, then the end mark."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # the supervisor is generic; torch only matters to the decode stack
        pass
    if cap_mb > 0:
        with open("/proc/self/statm") as fh:
            virtual = int(fh.read().split()[0]) * _PAGE
        cap = virtual + cap_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        for item in target(*args):
            conn.send(item)
    except MemoryError:
        conn.send(
            Failure(
                f"decode exceeded its memory budget (address space cap {cap_mb} MB)",
                FailureKind.MEMORY,
            )
        )
    except Exception as err:  # a bug, not a bad file: still one error row, never a lost video
        reason = f"decode failed: {type(err).__name__}: {err}"[:500]
        conn.send(Failure(reason, FailureKind.ERROR))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    conn.send((_DONE, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024))
    conn.close()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def supervise(
    target: Callable[..., Iterator[Any]],
    args: tuple,
    limits: DecodeLimits,
    stats: dict[str, float] | None = None,
) -> Iterator[Any]:
    """Items `target(*args)` yields, from a child process; a `Failure` last if it ended badly.

    `target` and `args` must be picklable (a module-level function). Memory is watched at
    `max_memory_mb`; the child's address space is capped at its start size plus twice that,
    a backstop for allocations faster than the watch. `stats`, when given, receives the
    child's CPU seconds and peak resident MB when it finishes normally.
    """
    ctx = _ctx()
    receiver, sender = ctx.Pipe(duplex=False)
    process = _Process(
        target=_child, args=(sender, target, args, 2 * limits.max_memory_mb), daemon=True
    )
    process.start()  # the first call in a process waits for the forkserver: not the video's time
    sender.close()
    started = last = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            wait = min(_POLL_S, started + limits.timeout_s - now, last + limits.stall_s - now)
            if receiver.poll(max(wait, 0.0)):
                try:
                    item = receiver.recv()
                except (EOFError, OSError):
                    yield _death(process)
                    return
                if isinstance(item, tuple) and item and item[0] == _DONE:
                    if stats is not None:
                        stats.update(child_cpu_s=item[1], child_peak_rss_mb=item[2])
                    return
                last = time.monotonic()
                yield item
            failure = _over_budget(process, limits, started, last)
            if failure is not None:
                _kill(process)
                yield failure
                return
            if not process.is_alive() and not receiver.poll(0):
                yield _death(process)
                return
    finally:
        receiver.close()
        _kill(process)


def _over_budget(process: Any, limits: DecodeLimits, started: float, last: float):
    """The budget the child has exceeded, as a `Failure`, or None."""
    resident = rss_mb(process.pid)
    if resident > limits.max_memory_mb:
        return Failure(
            f"decode exceeded its memory budget: {resident:.0f} MB resident > "
            f"decode.max_memory_mb={limits.max_memory_mb}",
            FailureKind.MEMORY,
        )
    now = time.monotonic()
    if now >= started + limits.timeout_s:
        return Failure(
            f"decode exceeded its time budget: decode.timeout_s={limits.timeout_s:g}",
            FailureKind.TIMEOUT,
        )
    if now >= last + limits.stall_s:
        return Failure(
            f"decode hung: nothing decoded for decode.stall_s={limits.stall_s:g} s",
            FailureKind.STALL,
        )
    return None


def _death(process: Any) -> Failure:
    process.join(5)
    code = process.exitcode
    if code is not None and code < 0:
        name = _signal_name(-code)
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return Failure(f"decoder process killed by {name}{hint}", FailureKind.SIGNAL)
    return Failure(f"decoder process exited with code {code}", FailureKind.EXIT)


def _kill(process: Any) -> None:
    if process.is_alive():
        process.kill()
    process.join(5)
