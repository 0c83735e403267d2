"""Connecting to Ray: the cluster named by RAY_ADDRESS, or a local one started here."""

from __future__ import annotations

import os


def connect(num_cpus: int | None = None) -> None:
    """Join `RAY_ADDRESS` when set (Ray Jobs set it); otherwise start a local Ray."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "0")
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
