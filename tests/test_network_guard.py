"""The loopback-only guard: a test that reaches beyond loopback fails, loopback works.

Catches: pytest-socket missing from the install or its `--allow-hosts` dropped from pyproject
(every probe below would pass or hang), an allow-list widened past loopback, and code that
swallows the guard's error (the `_loopback_only` record fails the test anyway).
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_socket import SocketConnectBlockedError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.filterwarnings("ignore:A test tried")
def test_connecting_outside_raises_in_process(blocked_connections) -> None:
    with pytest.raises(SocketConnectBlockedError, match=r"192\.0\.2\.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=0.5)
    assert len(blocked_connections.expect()) == 1


@pytest.mark.filterwarnings("ignore:A test tried")
def test_s3_client_without_endpoint_cannot_reach_aws(blocked_connections) -> None:
    """The dummy credentials every test has would go to real AWS without an endpoint.

    An IP-literal endpoint stands in for AWS so no DNS is needed; the attempt is blocked.
    """
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url="http://192.0.2.7",
        config=Config(retries={"max_attempts": 1}, connect_timeout=0.5),
    )
    with pytest.raises(Exception):  # noqa: B017 - botocore may wrap the guard's error
        client.list_buckets()
    assert any("192.0.2.7" in m for m in blocked_connections.expect())


def test_probe_outcomes_in_a_child_pytest(tmp_path: Path) -> None:
    """The suite's own configuration, in a child process: outside fails, loopback passes."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/network_probe.py", "-v", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / "base")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = result.stdout + result.stderr
    outcomes: dict[str, set[str]] = {}
    for name, outcome in re.findall(r"network_probe\.py::(\w+) (PASSED|FAILED|ERROR)", out):
        outcomes.setdefault(name, set()).add(outcome)
    # A blocked attempt fails the call (FAILED) and the guard's record fails the teardown
    # (ERROR); an attempt that was swallowed is caught at teardown alone.
    assert outcomes == {
        "test_reach_outside_directly": {"FAILED", "ERROR"},
        "test_reach_outside_and_swallow_the_error": {"PASSED", "ERROR"},
        "test_reach_outside_over_ipv6": {"FAILED", "ERROR"},
        "test_loopback_is_allowed": {"PASSED"},
    }, out[-3000:]
    assert result.returncode == 1
    assert "beyond loopback" in out or "SocketConnectBlockedError" in out
