"""`leave()`: the CLI's way out of Ray stops a local Ray it started, and only that.

Ray's own shutdown gives each process of a local Ray a second to exit on SIGTERM, one after
another, and the autoscaler monitor always used its second (its SIGTERM handler reports to a
GCS already stopped). `leave()` kills the monitor first; these tests hold it to what a user
relies on: every process the local Ray started is gone, and a driver that joined someone
else's Ray leaves that Ray running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # fresh interpreters, each starting a Ray

ROOT = Path(__file__).resolve().parents[2]

START_AND_LEAVE = textwrap.dedent(
    """
    import json, os, sys, ray
    from jobs.ray_session import leave, start_local
    from tests.jobs.listening import descendants

    start_local(num_cpus=1)
    ray.get(ray.remote(lambda: 1).remote())
    started = sorted(descendants(os.getpid()) - {os.getpid()})
    def command(pid):
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    monitors = [p for p in started if b"autoscaler/_private/monitor.py" in command(p)]
    leave()
    print(json.dumps({"started": started, "monitors": monitors,
                      "initialized": ray.is_initialized()}), flush=True)
    sys.stdin.readline()  # alive until the test has looked: its exit hook must not do the work
    """
)


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent to read its exit."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _still_alive(pids: list[int], within_s: float = 15.0) -> list[int]:
    """Those of `pids` still alive after `within_s`: workers exit when their raylet does,
    a moment after it."""
    deadline = time.monotonic() + within_s
    while (alive := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def test_leave_stops_every_process_of_the_local_ray_it_started(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ADDRESS": ""}
    proc = subprocess.Popen(
        [sys.executable, "-c", START_AND_LEAVE], env=env, cwd=tmp_path, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        report = json.loads(proc.stdout.readline())  # printed while the driver still lives
        assert report["initialized"] is False
        assert len(report["monitors"]) == 1  # the process Ray's shutdown used to wait on
        assert len(report["started"]) >= 4  # GCS, raylet, monitor, API server, workers
        assert _still_alive(report["monitors"], within_s=0) == []
        assert _still_alive(report["started"]) == []
    finally:
        proc.communicate("\n", timeout=60)
    assert proc.returncode == 0


HEAD = textwrap.dedent(
    """
    import sys, ray
    from jobs.ray_session import start_local
    start_local(num_cpus=1)
    print(ray.get_runtime_context().gcs_address, flush=True)
    sys.stdin.readline()
    print(ray.get(ray.remote(lambda: 6 * 7).remote()), flush=True)
    ray.shutdown()
    """
)

JOIN_AND_LEAVE = textwrap.dedent(
    """
    import ray
    from jobs.ray_session import connect, leave
    connect()
    print(ray.get(ray.remote(lambda: 1).remote()))
    leave()
    """
)


def test_a_driver_that_joined_a_ray_leaves_it_running(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ADDRESS": ""}
    head = subprocess.Popen(
        [sys.executable, "-c", HEAD], env=env, cwd=tmp_path, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        address = head.stdout.readline().strip()
        joined = subprocess.run(
            [sys.executable, "-c", JOIN_AND_LEAVE], cwd=tmp_path,
            env={**env, "RAY_ADDRESS": address, "RAY_AUTH_MODE": "token"},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert joined.returncode == 0, joined.stderr[-2000:]
        assert joined.stdout.split() == ["1"]
        head.stdin.write("\n")
        head.stdin.flush()
        assert head.stdout.readline().strip() == "42"  # the head's Ray still runs tasks
    finally:
        head.communicate(timeout=60)
    assert head.returncode == 0
