"""Running each video's decode in a supervised child process, within a time and memory budget.

A native decoder can crash (a signal), loop forever or allocate without bound on one bad
file. In the Ray task itself that kills or hangs the worker, and Ray retries the task, so one
file could stall a whole run. Here the work runs in a child process forked from a forkserver
that has already imported the decode stack. One child serves video after video (the parent
hands it a job, it streams the results back over a pipe one at a time and says when it is
done), so a video costs a message, not a process: a fresh child starts only after a failure
or when a child has used up its budget (`DecodeLimits.videos_per_child` videos, or half its
memory budget still resident after a video). For each video the parent:
- kills the child when the video exceeds `timeout_s`, or when no result has come for
  `stall_s` (a hang is caught long before the video's budget runs out);
- kills the child when its resident memory exceeds `max_memory_mb` (polled), and caps its
  address space for the video so a single huge allocation fails inside the child instead of
  waking the kernel's OOM killer;
- reports a child that died (signal or exit code) as a `Failure` saying what killed it.
Everything the child sent before that is kept: the caller has already passed it on. A child
that failed, or whose video was abandoned half-way, is never used again.

The forkserver preloads only what decode imports (`_PRELOAD`), torch included: the resize to
the model's size is torch's uint8 antialiased kernel, about 4x faster per 720p frame than
PIL's (BENCHMARKS.md, decode), and preloading it once per worker costs less than that.
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
    videos_per_child: int = 200
    """Videos one decode child serves before a fresh one replaces it (a leak stays bounded)."""


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


def _peak_rss_mb() -> float:
    """This process's resident high-water mark since `_reset_peak`, MB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    """Start a new resident high-water mark, so each video reports its own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:  # not Linux, or not allowed: the peak is the child's lifetime peak
        pass


def _cap_address_space(cap_mb: int) -> None:
    """Cap the address space at its size now plus `cap_mb` (the soft limit: set per video)."""
    if cap_mb <= 0:
        return
    with open("/proc/self/statm") as fh:
        virtual = int(fh.read().split()[0]) * _PAGE
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = virtual + cap_mb * 2**20
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(conn: Any) -> None:
    """Child body: run each job `(target, args, cap_mb)` the parent sends, sending every item
    and then the end mark with the job's CPU seconds and peak resident MB; exit on EOF."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # the supervisor is generic; torch only matters to the decode stack
        pass
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        target, args, cap_mb = job
        _reset_peak()
        cpu = _cpu_s()
        _cap_address_space(cap_mb)
        failed = False
        try:
            for item in target(*args):
                conn.send(item)
        except MemoryError:
            failed = True
            conn.send(
                Failure(
                    f"decode exceeded its memory budget (address space cap {cap_mb} MB)",
                    FailureKind.MEMORY,
                )
            )
        except Exception as err:  # a bug, not a bad file: still one error row, never a lost video
            failed = True
            reason = f"decode failed: {type(err).__name__}: {err}"[:500]
            conn.send(Failure(reason, FailureKind.ERROR))
        conn.send((_DONE, _cpu_s() - cpu, _peak_rss_mb(), failed))


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _Worker:
    """One decode child and the parent's end of its pipe."""

    def __init__(self) -> None:
        ctx = _ctx()
        self.conn, child_end = ctx.Pipe(duplex=True)
        self.process = _Process(target=_child, args=(child_end,), daemon=True)
        self.process.start()  # the first start in a process waits for the forkserver
        child_end.close()
        self.videos = 0

    def usable(self, limits: DecodeLimits) -> bool:
        """Alive, within its video budget, and not holding half its memory budget."""
        return (
            self.process.is_alive()
            and self.videos < limits.videos_per_child
            and rss_mb(self.process.pid) < limits.max_memory_mb / 2
        )

    def stop(self) -> None:
        self.conn.close()
        _kill(self.process)


_idle: list[_Worker] = []
_started = 0
"""Decode children started in this process (benchmarks and tests read it)."""


def children_started() -> int:
    """How many decode children this process has started so far."""
    return _started


def _acquire(limits: DecodeLimits) -> _Worker:
    """An idle child still within its budget, or a fresh one."""
    global _started
    with _context_lock:
        while _idle:
            worker = _idle.pop()
            if worker.usable(limits):
                return worker
            worker.stop()
        _started += 1
    return _Worker()


def _release(worker: _Worker, limits: DecodeLimits) -> None:
    if worker.usable(limits):
        with _context_lock:
            _idle.append(worker)
    else:
        worker.stop()


def supervise(
    target: Callable[..., Iterator[Any]],
    args: tuple,
    limits: DecodeLimits,
    stats: dict[str, float] | None = None,
) -> Iterator[Any]:
    """Items `target(*args)` yields, from a child process; a `Failure` last if it ended badly.

    `target` and `args` must be picklable (a module-level function). Memory is watched at
    `max_memory_mb`; the child's address space is capped at its size when the video starts
    plus twice that, a backstop for allocations faster than the watch. `stats`, when given,
    receives the video's CPU seconds in the child and its peak resident MB.
    """
    worker = _acquire(limits)
    process, conn = worker.process, worker.conn
    reusable = False
    try:
        conn.send((target, args, 2 * limits.max_memory_mb))
        worker.videos += 1
        started = last = time.monotonic()
        while True:
            now = time.monotonic()
            wait = min(_POLL_S, started + limits.timeout_s - now, last + limits.stall_s - now)
            if conn.poll(max(wait, 0.0)):
                try:
                    item = conn.recv()
                except (EOFError, OSError):
                    yield _death(process)
                    return
                if isinstance(item, tuple) and item and item[0] == _DONE:
                    if stats is not None:
                        stats.update(child_cpu_s=item[1], child_peak_rss_mb=item[2])
                    reusable = not item[3]
                    return
                last = time.monotonic()
                yield item
            failure = _over_budget(process, limits, started, last)
            if failure is not None:
                _kill(process)
                yield failure
                return
            if not process.is_alive() and not conn.poll(0):
                yield _death(process)
                return
    finally:
        if reusable:
            _release(worker, limits)
        else:  # failed, killed, or abandoned mid-video: its state is unknown
            worker.stop()


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
