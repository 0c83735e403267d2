"""`leave()`: the CLI's way out of Ray stops a local Ray it started, and only that.

Ray's own shutdown gives each process of a local Ray a second to exit on SIGTERM, one after
another, and the autoscaler monitor always used its second (its SIGTERM handler reports to a
GCS already stopped). `leave()` kills the monitor first; this test holds it to what a user
relies on: every process the local Ray started is gone. That a driver which joined someone
else's Ray leaves that Ray running is tests/jobs/test_ray_join.py's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.jobs.listening import running

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


def _still_alive(pids: list[int], within_s: float = 15.0) -> list[int]:
    """Those of `pids` still alive after `within_s`: workers exit when their raylet does,
    a moment after it."""
    deadline = time.monotonic() + within_s
    while (alive := [p for p in pids if running(p)]) and time.monotonic() < deadline:
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
