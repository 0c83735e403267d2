"""Connecting to Ray: the cluster named by RAY_ADDRESS, or a local one started here.

A local Ray is loopback-only: every process (GCS, raylet, workers, the dashboard and
runtime-env agents, the metrics exporter) binds 127.0.0.1, because Ray binds loopback only when
the node's address is exactly 127.0.0.1, and on Linux `ray.init` swaps a given 127.0.0.1 for
the machine's network address (`services.resolve_ip_for_localhost`) unless Ray thinks it runs
without clusters (`ray_constants.ENABLE_RAY_CLUSTER`, as on macOS). `_loopback_node` turns that
off for the start only. Token authentication is on as well: Ray turns it on for a new local
Ray unless `RAY_AUTH_MODE` says otherwise (its warning saying so is one of Ray's logs).

Quiet by default: Ray's own logs, warnings and Ray Data's progress bars would drown clipnote's
single progress line, so they appear only with `verbose=True` (`--verbose`): Ray's Python
loggers at ERROR, its deprecation warnings (about Ray's own internals) ignored, and the lines
its C++ core writes to this process's stderr left out (`jobs.native_stderr`). An address that
nothing answers on fails in seconds with a clear `Unreachable` error instead of Ray's
minute-long wait.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from pipeline.core.errors import Unreachable

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_PROBE_TIMEOUT_S = 5.0
LOCAL_SYSTEM_CONFIG = {"idle_worker_killing_time_threshold_ms": 60_000}
"""A local Ray keeps an idle worker for a minute, not Ray's default second: a decode worker
carries a warm forkserver and decode child, and the annotate actor pushes the worker count
past Ray's soft limit (the CPU count), so with the default the decode workers were killed
between stages and each fresh one paid seconds of imports again (BENCHMARKS.md, pipeline)."""


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a `host:port` or `ray://host:port` address; None for `auto`/`local`."""
    if address in ("auto", "local") or ("://" not in address and ":" not in address):
        return None
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.hostname is None or parsed.port is None:
        return None
    return parsed.hostname, parsed.port


def check_ray_address(address: str) -> None:
    """One TCP connect to the head; `Unreachable` (exit 1) when nothing answers there."""
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=_PROBE_TIMEOUT_S):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise Unreachable(
            f"ray: cannot reach the Ray cluster at RAY_ADDRESS={address} ({reason}): start it "
            "(`ray start --head`) or unset RAY_ADDRESS to run on a local Ray"
        ) from None


def _quiet_ray() -> None:
    """Ray's Python loggers at ERROR, its deprecation warnings ignored, no Ray Data progress
    bars (nor the warning Ray Data logs once about them being off)."""
    import ray.data
    from ray.util.annotations import RayDeprecationWarning

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    for name in ("ray", "ray.data", "ray.data._internal"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=RayDeprecationWarning)


@contextmanager
def _loopback_node() -> Iterator[None]:
    """While a local Ray starts: 127.0.0.1 stays the node's address (see the module's doc)."""
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def loopback_only(host: str, port: int) -> bool:
    """Whether the head at `host:port` is a loopback-only Ray (`start_local`'s): its GCS
    answers on 127.0.0.1 and not on the address Ray would take for this machine.

    A driver joining it must keep 127.0.0.1 as its node's address, or Ray swaps in the
    machine's network address, looks for a raylet registered there, finds none, and waits
    for it without end (a fault trial's night driver waited 13 minutes)."""
    if host not in _LOOPBACK:
        return False
    from ray._private import services

    outward = services.node_ip_address_from_perspective()
    if outward in _LOOPBACK:
        return True
    try:
        with socket.create_connection((outward, port), timeout=_PROBE_TIMEOUT_S):
            return False
    except OSError:
        return True


def start_local(num_cpus: int | None = None, verbose: bool = False) -> None:
    """A new local Ray on loopback only, this process its driver.

    `address="local"`: a new Ray, even when a `ray start` cluster runs on this machine."""
    import ray

    with _loopback_node():
        ray.init(
            address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=verbose,
            logging_level=logging.INFO if verbose else logging.ERROR,
            _node_ip_address="127.0.0.1", _system_config=LOCAL_SYSTEM_CONFIG,
        )  # fmt: skip


def _local_node() -> Any:
    """The node of a local Ray this process started; None when it joined a cluster."""
    from ray._private import worker

    node = worker._global_node
    return node if node is not None and node.head else None


def _kill_monitor(node: Any) -> None:
    """Kill the autoscaler monitor of a local Ray, before Ray's shutdown.

    Ray stops a local Ray's processes one at a time, giving each a second to exit on SIGTERM.
    The monitor never makes it: its SIGTERM handler reports its own death to the GCS, which Ray
    has already stopped, so it hangs until the SIGKILL, and every local run paid that second at
    exit (BENCHMARKS.md, `clipnote demo`). A one-node Ray's monitor holds no state worth a
    graceful stop; Ray's shutdown then finds it gone and passes on."""
    from ray._private import ray_constants

    for info in node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, []):
        info.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):  # Ray's shutdown reaps it then
            info.process.wait(timeout=_PROBE_TIMEOUT_S)


def _raylet_tree(node: Any) -> dict[int, int]:
    """The raylet's workers and what they started (decode forkservers and children): after
    Ray's shutdown they are orphans that take a second or more to exit on their own."""
    from ray._private import ray_constants

    from jobs.process_tree import descendants

    tree: dict[int, int] = {}
    for info in node.all_processes.get(ray_constants.PROCESS_TYPE_RAYLET, []):
        tree |= descendants(info.process.pid)
    return tree


def leave() -> None:
    """Disconnect from Ray, and stop the local Ray this process started, if any, at once.

    The CLI calls it on its way out. A local Ray's processes are all gone when it returns, so
    neither Ray's exit hook (which sleeps half a second to let logs print, then stops the same
    processes) nor the stderr filter's drain (which waits for every holder of its pipe, the
    workers among them) has anything left to wait for."""
    import ray

    from jobs.process_tree import kill_remaining

    if not ray.is_initialized():
        return
    node = _local_node()
    workers: dict[int, int] = {}
    if node is not None:
        workers = _raylet_tree(node)
        _kill_monitor(node)
    ray.shutdown()
    kill_remaining(workers)  # the run is over: nothing of theirs is left to save


def cluster_cpus() -> float:
    """CPUs of the connected cluster (this machine's count if Ray reports none)."""
    import ray

    return float(ray.cluster_resources().get("CPU", os.cpu_count() or 1))


def connect(num_cpus: int | None = None, verbose: bool = False) -> None:
    """Join `RAY_ADDRESS` when set (Ray Jobs set it); otherwise start a local Ray on loopback."""
    import ray

    if ray.is_initialized():
        return
    if not verbose:
        from jobs.native_stderr import filter_native_stderr

        filter_native_stderr()
        _quiet_ray()  # before the start: its own warnings (token auth) are Ray's loggers too
    address = os.environ.get("RAY_ADDRESS")
    if address:
        check_ray_address(address)
        kwargs = {}
        target = _host_port(address)
        if target and target[0] in _LOOPBACK:
            kwargs["_node_ip_address"] = "127.0.0.1"  # else Ray swaps in the interface address
        level = logging.INFO if verbose else logging.ERROR
        join = _loopback_node() if target and loopback_only(*target) else contextlib.nullcontext()
        with join:
            ray.init(address=address, log_to_driver=verbose, logging_level=level, **kwargs)
    else:
        start_local(num_cpus, verbose)
    if not verbose:
        _quiet_ray()  # ray.init set the "ray" logger's level again
