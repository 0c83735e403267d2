"""Pipeline fixtures: one real local Ray per test session, started only when a test asks."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """A real local Ray (2 CPUs, no dashboard, on loopback), shut down when the session ends."""
    import ray

    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=2, include_dashboard=False, log_to_driver=False,
            _node_ip_address="127.0.0.1",
        )  # fmt: skip
    try:
        yield
    finally:
        if started:
            ray.shutdown()
