"""Shared fixtures: real servers on loopback, tiny checkpoints, and the loopback-only guard.

Network: pytest-socket (`--allow-hosts` in pyproject's addopts) makes `socket.connect` to any
address but loopback raise in the test process; `_loopback_only` below also fails the test
when code under test catches that error and carries on (an error row, a retry loop), so a
test that reaches for the real AWS can never pass. Ray's workers are subprocesses and are not
guarded; every endpoint they are given comes from these fixtures (loopback).
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.decode.hook import DECODE_HOOK_ENV
from tests.helpers import build_tiny_model
from tests.pipeline.decode.faults import HOOK as FAULTS_HOOK

# Ray must not phone home from the processes it starts (they inherit the environment).
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# The isolation tests' poison and hanging videos (tests/pipeline/decode/faults.py) work only
# here: the decode child calls the hook this names. Set at import, before any forkserver or Ray
# starts, so their children inherit it.
os.environ.setdefault(DECODE_HOOK_ENV, FAULTS_HOOK)
# Checkpoints fetched from `s3://` in tests land in a temporary cache, never ~/.cache. Set at
# import, before any Ray starts, so Ray's workers inherit it too.
_CACHE = tempfile.mkdtemp(prefix="clipnote-test-cache-")
os.environ.setdefault("CLIPNOTE_CACHE", _CACHE)
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


# A test that needs one of these starts a Ray cluster (seconds to a minute on 2 cores): slow,
# whatever its module says. Other slow tests carry `@pytest.mark.slow` themselves.
SLOW_FIXTURES = frozenset({"ray_session", "ray_head", "results_world"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BlockedConnections(list):
    """Non-loopback connection attempts seen during one test (messages of the errors raised)."""

    def expect(self) -> list[str]:
        """Take the attempts so far as expected (for tests that probe the guard itself)."""
        seen = list(self)
        self.clear()
        return seen


@pytest.fixture(autouse=True)
def _loopback_only(request: pytest.FixtureRequest) -> Iterator[BlockedConnections]:
    """Fail the test if anything tried to connect beyond loopback, even if it caught the error."""
    from pytest_socket import SocketConnectBlockedError

    guarded = socket.socket.connect
    if guarded.__name__ != "guarded_connect":  # pragma: no cover - the addopts went missing
        pytest.fail("pytest-socket's --allow-hosts guard is not active (pyproject addopts)")
    blocked = BlockedConnections()

    def recording_connect(sock: socket.socket, *args: Any) -> None:
        try:
            return guarded(sock, *args)
        except SocketConnectBlockedError as err:
            blocked.append(str(err))
            raise

    socket.socket.connect = recording_connect  # type: ignore[method-assign]
    try:
        yield blocked
    finally:
        if socket.socket.connect is recording_connect:
            socket.socket.connect = guarded  # type: ignore[method-assign]
    if blocked:
        pytest.fail(f"the test tried to reach beyond loopback: {blocked}", pytrace=False)


@pytest.fixture()
def blocked_connections(_loopback_only: BlockedConnections) -> BlockedConnections:
    """The guard's record of this test's blocked attempts (to probe the guard itself)."""
    return _loopback_only


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API (moto's server mode) on loopback, one per test module.

    One server per module: buckets and objects never leak from one module into another,
    whatever names their tests pick. Within a module, take unique names from `s3_bucket`.
    """
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session", autouse=True)
def _aws_test_credentials() -> Iterator[None]:
    """Dummy credentials through the standard environment chain; the guard keeps them local."""
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield
    mp.undo()


@pytest.fixture()
def s3_client(s3_endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


@pytest.fixture()
def s3_bucket(s3_client: Any) -> str:
    """A new, empty bucket with a name no other test uses."""
    name = f"t-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """A real local Ray (2 CPUs, no dashboard), shut down when the session ends. Not
    `jobs.ray_session.start_local`, whose token authentication the fault trials' night
    drivers, which join this Ray by its address, would each need to be told about
    (`RAY_AUTH_MODE=token`); joining a loopback-only Ray itself works
    (tests/jobs/test_ray_join.py)."""
    import ray

    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    started = not ray.is_initialized()
    if started:
        # address="local": never join a `ray start` cluster found on the machine.
        ray.init(
            address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
            _node_ip_address="127.0.0.1",
        )  # fmt: skip
    try:
        yield
    finally:
        if started:
            ray.shutdown()


@pytest.fixture()
def tiny_checkpoint(tmp_path: Path) -> Path:
    """A tiny random checkpoint written by clipnote's own writer in the published format."""
    from model import save_checkpoint

    return save_checkpoint(build_tiny_model(seed=7), tmp_path / "tiny-ckpt")
