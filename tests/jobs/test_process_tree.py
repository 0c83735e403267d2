"""`jobs.process_tree`: the processes `leave()` kills are exactly a tree's live descendants,
and a pid taken over by a later process is never killed (real processes, read from /proc)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.process_tree import descendants, kill_remaining
from tests.jobs.listening import running

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc (Linux)")

# A parent with two sleeping children, one of which has a sleeping child of its own.
TREE = "sleep 60 & (sleep 60 & wait) & wait"


def _tree() -> subprocess.Popen:
    proc = subprocess.Popen(["bash", "-c", TREE])
    deadline = time.monotonic() + 10
    while len(descendants(proc.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # until bash has forked all of them
    return proc


def _gone(pids, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not any(running(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def test_descendants_are_every_live_process_below_the_root_and_not_the_root():
    proc = _tree()
    try:
        found = descendants(proc.pid)
        # the subshell, the first `sleep 60` and the subshell's own `sleep 60`
        names = sorted(Path(f"/proc/{pid}/comm").read_text().strip() for pid in found)
        assert names == ["bash", "sleep", "sleep"]
        assert proc.pid not in found
        assert os.getpid() not in found
    finally:
        proc.kill()
        proc.wait()


def test_kill_remaining_kills_the_tree_but_not_a_pid_with_another_start_time():
    proc = _tree()
    try:
        found = descendants(proc.pid)
        spared_pid = min(found)
        changed = {**found, spared_pid: found[spared_pid] + 1}  # as if the pid were reused
        killed = kill_remaining(changed)
        assert sorted(killed) == sorted(set(found) - {spared_pid})
        assert running(spared_pid)
        assert _gone(killed)
        assert kill_remaining(found) == [spared_pid]  # the real one, killed now
        assert _gone([spared_pid])
        assert kill_remaining(found) == []  # nothing left alive
    finally:
        proc.kill()
        proc.wait()


def test_a_process_without_children_has_no_descendants():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert descendants(proc.pid) == {}
    finally:
        proc.kill()
        proc.wait()
