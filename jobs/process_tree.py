"""A process's descendants, read from /proc, and killing those still alive later.

What `leave()` needs to stop a local Ray's workers at once: by the time Ray's shutdown has
stopped the raylet, its workers are orphans that take a second or more to notice and exit,
and each holds the CLI's stderr pipe open (`jobs.native_stderr`), so the CLI's exit waited for
them. Linux only: elsewhere there is no /proc, the tree is empty and nothing is killed.
"""

from __future__ import annotations

import os
import signal


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live, non-zombie `pid`; None otherwise."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[19])  # ppid; starttime (field 22 of the whole line)


def descendants(root: int) -> dict[int, int]:
    """Every live process below `root` (not `root` itself): pid -> start time, which tells a
    process from a later one that reuses its pid."""
    try:
        entries = [int(e) for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return {}
    children: dict[int, list[tuple[int, int]]] = {}
    for pid in entries:
        stat = _stat(pid)
        if stat is not None:
            children.setdefault(stat[0], []).append((pid, stat[1]))
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for pid, started in children.get(todo.pop(), []):
            if pid not in found:
                found[pid] = started
                todo.append(pid)
    return found


def kill_remaining(processes: dict[int, int]) -> list[int]:
    """SIGKILL those of `processes` (pid -> start time) that are still the same live
    process; returns the pids killed."""
    killed = []
    for pid, started in processes.items():
        stat = _stat(pid)
        if stat is None or stat[1] != started:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue
        killed.append(pid)
    return killed
