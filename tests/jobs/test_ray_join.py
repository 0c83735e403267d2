"""A second driver joins a local run's loopback-only Ray by the address that run reports.

The fault trials' night drivers do exactly this (RAY_ADDRESS = the head's `gcs_address`). Before
the fix, the joining driver took the machine's network address as its node's, looked for a
raylet registered there, found none and waited without end. The joining driver then leaves as
the CLI does (`jobs.ray_session.leave`), and the head's Ray still runs tasks: leaving stops
only a Ray this driver started."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # two fresh interpreters and a Ray start

ROOT = Path(__file__).resolve().parents[2]

HEAD = textwrap.dedent(
    """
    import sys, ray
    from jobs.ray_session import start_local
    start_local(num_cpus=1)
    print(ray.get_runtime_context().gcs_address, flush=True)
    sys.stdin.readline()  # held until the joining driver is done
    print(ray.get(ray.remote(lambda: 6 * 7).remote()), flush=True)  # still running
    ray.shutdown()
    """
)

JOIN = textwrap.dedent(
    """
    import ray
    from jobs.ray_session import connect, leave
    connect()
    print(ray.get(ray.remote(lambda: 6 * 7).remote()), ray.get_runtime_context().gcs_address)
    leave()  # as the CLI leaves: the head's Ray is not this driver's to stop
    """
)


def test_a_driver_joins_a_loopback_only_local_ray_by_its_reported_address(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ADDRESS": ""}
    head = subprocess.Popen(
        [sys.executable, "-c", HEAD], env=env, cwd=tmp_path, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        address = head.stdout.readline().strip()
        host, _port = address.rsplit(":", 1)
        assert host == "127.0.0.1", address
        joined = subprocess.run(
            [sys.executable, "-c", JOIN], cwd=tmp_path,
            env={**env, "RAY_ADDRESS": address, "RAY_AUTH_MODE": "token"},  # its token is on
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert joined.returncode == 0, joined.stderr[-2000:]
        assert joined.stdout.split() == ["42", address]
        head.stdin.write("\n")
        head.stdin.flush()
        assert head.stdout.readline().strip() == "42"  # the head's Ray outlived the join
    finally:
        head.communicate(timeout=60)
    assert head.returncode == 0
