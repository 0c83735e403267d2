"""Faults injected into nightly runs, and what the reading path shows afterwards.

    python -m benchmarks.reliability [--kill-trials 10] [--proxy-trials 2] [--out RELIABILITY.md]

Every scenario runs the real pipeline (local Ray, the shipped toy model, PyAV-made videos) and
compares `pipeline.reading.read_latest` with the clips of one clean run of the same input:
rows expected / found / duplicated (a clip more than once) / lost (missing or different).

- driver SIGKILL: `python -m jobs.nightly` runs as a separate driver joined to the same Ray
  and is killed with SIGKILL after a random delay; the night is then re-run to the end. On the
  local disk, on moto's S3 server and on SeaweedFS.
- faulty S3: a loopback proxy answers 503 SlowDown, resets connections (before the request, or
  after it so the response is lost) or stalls, on a fraction of all S3 requests of the
  driver and the workers (`tests/pipeline/s3_faults.py`).
- node loss: a two-node `ray.cluster_utils.Cluster` on loopback; the node running the work is
  removed mid-run; the run goes on on the other node.

The tests (tests/pipeline/test_sink_faults.py) run few trials of each; this script runs more
and writes RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
NIGHT = date(2026, 5, 1)
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class Store:
    """Where a scenario's input videos and output live."""

    name: str
    root: str  # a local folder or s3://bucket
    endpoint: str | None = None

    def uri(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])


@dataclass
class Outcome:
    scenario: str
    store: str
    expected: int
    found: int
    duplicated: int
    lost: int
    extra: int
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return self.found == self.expected and not (self.duplicated or self.lost or self.extra)


# -- inputs and configs --------------------------------------------------------------------


def make_videos(folder: Path, n: int = 6) -> dict[str, bytes]:
    """`n` toy videos of 2 s (two 1 s clips each), by file name."""
    from model.toy.video_io import write_toy_videos

    folder.mkdir(parents=True, exist_ok=True)
    write_toy_videos(folder, seed=31, n=n, num_frames=48, size=64)
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.mp4"))}


def put_videos(store: Store, videos: dict[str, bytes], prefix: str = "videos") -> str:
    """Place the videos in the store; returns the input URI."""
    if store.endpoint is None:
        folder = Path(store.root) / prefix
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in videos.items():
            (folder / name).write_bytes(data)
        return str(folder)
    client = s3_client(store.endpoint)
    bucket = store.root.removeprefix("s3://").split("/", 1)[0]
    with contextlib.suppress(Exception):
        client.create_bucket(Bucket=bucket)
    for name, data in videos.items():
        client.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=data)
    return store.uri(prefix)


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def raw_config(input_uri: str, output: str, endpoint: str | None, **extra: Any) -> dict:
    raw: dict[str, Any] = {
        "input": input_uri,
        "output": output,
        "storage": {"endpoint_url": endpoint},
        "clips": {"mode": "window", "length_s": 1.0, "stride_s": 1.0},
        "sampling": {"num_frames": 4},
        "model": {"source": "toy", "max_new_tokens": 8, "tag_max_new_tokens": 4, "batch_size": 2},
        "output_options": {"rows_per_file": 2},
        "commit": {"chunk_videos": 1, "grace_s": 0},
    }
    raw.update(extra)
    return raw


def options_of(endpoint: str | None):
    from pipeline.storage import StorageOptions

    return StorageOptions(endpoint_url=endpoint)


# -- comparing with a clean run ------------------------------------------------------------


def clip_rows(output: str, endpoint: str | None) -> list[tuple]:
    """(video name, clip index, status, caption, tags) of each row `read_latest` gives."""
    from pipeline.reading import read_latest

    table = read_latest(output, options_of(endpoint))
    return [
        (r["video_uri"].rsplit("/", 1)[-1], r["clip_index"], r["status"], r["caption"],
         tuple(r["tags"]))
        for r in table.to_pylist()
    ]  # fmt: skip


def compare(scenario: str, store: str, rows: list[tuple], reference: list[tuple], **detail):
    expected = Counter(reference)
    found = Counter(rows)
    keys = Counter((r[0], r[1]) for r in rows)
    duplicated = sum(n - 1 for n in keys.values() if n > 1)
    lost = sum((expected - found).values())
    extra = sum((found - expected).values()) - duplicated
    return Outcome(scenario, store, len(reference), len(rows), duplicated, lost, max(extra, 0),
                   detail)  # fmt: skip


def clean_run(input_uri: str, output: str, endpoint: str | None) -> list[tuple]:
    from jobs.nightly import run_nightly
    from pipeline.config import build_config

    run_nightly(build_config(raw_config(input_uri, output, endpoint)), NIGHT)
    return clip_rows(output, endpoint)


# -- driver SIGKILL ------------------------------------------------------------------------


def ray_address() -> str:
    import ray

    return ray.get_runtime_context().gcs_address


def committed_chunks(output: str, endpoint: str | None) -> int:
    from pipeline.reading import snapshot

    try:
        snap = snapshot(output, options_of(endpoint))
    except Exception:  # a half-written listing: nothing committed yet
        return 0
    return len(snap.chunks) + sum(r.get("chunks", 0) for r in snap.runs.values())


def kill_trial(
    store: Store, input_uri: str, output: str, reference: list[tuple], rng: random.Random,
    workdir: Path,
) -> Outcome:  # fmt: skip
    """Start the night as its own driver, SIGKILL it at a random point (after a random number
    of committed chunks, plus a random delay), re-run the night, compare."""
    from jobs.nightly import run_nightly
    from pipeline.config import build_config

    raw = raw_config(input_uri, output, store.endpoint)
    config_path = workdir / f"night-{rng.getrandbits(32):08x}.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    env = {**os.environ, **CREDENTIALS, "RAY_ADDRESS": ray_address(), "PYTHONPATH": str(ROOT)}
    # one chunk per video (2 clips each): kill after 0..videos-1 chunks, so always mid-run
    target_chunks = rng.randint(0, max(0, len(reference) // 2 - 1))
    extra_s = rng.uniform(0.0, 1.0)
    started = time.monotonic()
    with open(workdir / f"{config_path.stem}.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobs.nightly", str(config_path), "--date", NIGHT.isoformat()],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        while proc.poll() is None and committed_chunks(output, store.endpoint) < target_chunks:
            time.sleep(0.3)
        time.sleep(extra_s)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    chunks_before = committed_chunks(output, store.endpoint)
    summary = run_nightly(build_config(raw), NIGHT)
    detail = {
        "killed_after_s": round(time.monotonic() - started, 1), "killed": killed,
        "exit": proc.returncode, "chunks_committed_before_kill": chunks_before,
        "videos_redone": summary.processed,
    }  # fmt: skip
    return compare("driver SIGKILL", store.name, clip_rows(output, store.endpoint), reference,
                   **detail)  # fmt: skip


# -- faulty S3 proxy -----------------------------------------------------------------------


def proxy_trial(
    upstream: str, bucket: str, videos: dict[str, bytes], reference: list[tuple],
    rate: float, seed: int,
) -> Outcome:  # fmt: skip
    from tests.pipeline.s3_faults import FaultyS3Proxy

    store = Store("moto", f"s3://{bucket}", upstream)
    input_uri = put_videos(store, videos, prefix=f"videos-{seed}")
    proxy = FaultyS3Proxy(upstream, rate=rate, seed=seed).start()
    try:
        output = f"s3://{bucket}/proxy-{seed}"
        rows = clean_run(input_uri, output, proxy.endpoint)
    finally:
        proxy.stop()
    stats = dict(proxy.stats)
    return compare("S3 faults via proxy", "moto", rows, reference, rate=rate, **stats)


# -- node loss -----------------------------------------------------------------------------


def node_loss_trial(videos: dict[str, bytes], work: Path, extra_s: float) -> Outcome:
    """Two worker nodes on loopback: a clean run, then a run during which the node that has
    been doing the work is removed (`allow_graceful=False`, like a lost machine)."""
    import threading

    import ray
    from ray._private import services
    from ray.cluster_utils import Cluster

    from jobs.nightly import run_nightly
    from pipeline.config import build_config

    input_uri = put_videos(Store("local", str(work / "node")), videos)
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False},
    )  # fmt: skip
    nodes = [cluster.add_node(num_cpus=2, node_ip_address="127.0.0.1") for _ in range(2)]
    cluster.wait_for_nodes()
    # Ray turns "127.0.0.1" in an address into this machine's interface address, where a
    # loopback-only cluster does not listen; this driver's own address lookup says loopback.
    services.node_ip_address_from_perspective = lambda address=None: "127.0.0.1"
    gcs = "127.0.0.1:" + cluster.address.rsplit(":", 1)[1]
    ray.init(address=gcs, log_to_driver=False, _node_ip_address="127.0.0.1")
    removed: dict[str, Any] = {}
    try:
        reference = clean_run(input_uri, str(work / "node-reference"), None)

        output = str(work / "node-trial")

        def remove() -> None:
            """Once the run has committed its first chunk (so mid-run), plus a random delay."""
            deadline = time.monotonic() + 300
            while committed_chunks(output, None) < 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(extra_s)
            busy = {a["Address"]["NodeID"] for a in _alive_actors()}
            victim = next((n for n in nodes if n.unique_id in busy), nodes[0])
            removed["chunks_before_removal"] = committed_chunks(output, None)
            cluster.remove_node(victim, allow_graceful=False)
            removed["removed_at_s"] = round(time.monotonic() - started, 1)
            removed["had_the_annotator"] = bool(busy)

        started = time.monotonic()
        threading.Thread(target=remove, daemon=True).start()
        raw = raw_config(input_uri, output, None)
        summary = run_nightly(build_config(raw), NIGHT)
        removed.update(counts=summary.counts, run_s=round(summary.seconds, 1))
        rows = clip_rows(output, None)
    finally:
        ray.shutdown()
        cluster.shutdown()
    return compare("worker node removed", "local", rows, reference, **removed)


def _alive_actors() -> list[dict[str, Any]]:
    import ray

    return [a for a in ray._private.state.actors().values() if a.get("State") == "ALIVE"]


# -- the report ----------------------------------------------------------------------------


@contextlib.contextmanager
def local_ray() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")  # fmt: skip
    try:
        yield
    finally:
        ray.shutdown()


def write_report(outcomes: list[Outcome], path: Path, command: str, seconds: float) -> None:
    lines = [
        "# Reliability",
        "",
        "Written by `benchmarks/reliability.py` (the module docstring says what each scenario",
        "does). Each row: one fault scenario on one store; rows are `clips` view rows (each",
        "clip's latest committed annotation) compared with one clean run of the same input.",
        "",
        f"Command: `{command}` ({seconds / 60:.1f} min on a 2-core CPU machine, toy model).",
        "",
        "| fault | store | trials | injected | rows expected | found | duplicated | lost | clean |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for outcome in outcomes:
        groups.setdefault((outcome.scenario, outcome.store), []).append(outcome)
    for (scenario, store), items in groups.items():
        injected = _injected(scenario, items)
        lines.append(
            f"| {scenario} | {store} | {len(items)} | {injected} | "
            f"{sum(o.expected for o in items)} | {sum(o.found for o in items)} | "
            f"{sum(o.duplicated for o in items)} | {sum(o.lost + o.extra for o in items)} | "
            f"{sum(o.clean for o in items)}/{len(items)} |"
        )
    lines += ["", "## Trials", ""]
    for outcome in outcomes:
        lines.append(f"- {outcome.scenario} / {outcome.store}: " + json.dumps(asdict(outcome)))
    path.write_text("\n".join(lines) + "\n")


def _injected(scenario: str, items: list[Outcome]) -> str:
    if scenario == "driver SIGKILL":
        killed = sum(bool(o.detail.get("killed")) for o in items)
        return f"{killed} kills mid-run"
    if scenario.startswith("S3 faults"):
        requests = sum(o.detail.get("requests", 0) for o in items)
        faults = Counter()
        for o in items:
            faults.update({k: o.detail.get(k, 0) for k in
                           ("slowdown", "reset_before", "stall", "reset_after")})  # fmt: skip
        total = sum(faults.values())
        share = total / requests if requests else 0
        kinds = ", ".join(f"{k} {v}" for k, v in faults.items())
        return f"{total} of {requests} requests ({share:.0%}): {kinds}"
    return f"{len(items)} node removals"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kill-trials", type=int, default=10)
    parser.add_argument("--proxy-trials", type=int, default=2)
    parser.add_argument("--node-trials", type=int, default=1)
    parser.add_argument("--stores", default="local,moto,seaweedfs")
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=ROOT / "RELIABILITY.md")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--videos", type=int, default=4)
    args = parser.parse_args()
    os.environ.update(CREDENTIALS)
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    rng = random.Random(args.seed)
    outcomes: list[Outcome] = []
    command = ("python -m benchmarks.reliability " + " ".join(sys.argv[1:])).strip()

    def record(outcome: Outcome) -> None:
        """Keep it, and rewrite the report: an interrupted run still leaves what it found."""
        print(json.dumps(asdict(outcome)), flush=True)
        outcomes.append(outcome)
        write_report(outcomes, args.out, command, time.perf_counter() - started)

    names = [n for n in args.stores.split(",") if n]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        videos = make_videos(work / "src", n=args.videos)
        stores = _start_stores(names, work, stack)
        if stores:
            with local_ray():
                inputs, references = {}, {}
                for store in stores:
                    inputs[store.name] = put_videos(store, videos)
                    references[store.name] = clean_run(
                        inputs[store.name], store.uri("reference"), store.endpoint
                    )
                    if store.name == "moto":
                        bucket = store.root.removeprefix("s3://")
                        for trial in range(args.proxy_trials):
                            record(proxy_trial(store.endpoint, bucket, videos,
                                               references[store.name], args.fault_rate,
                                               seed=trial))  # fmt: skip
                for trial in range(args.kill_trials):  # stores take turns
                    for store in stores:
                        record(kill_trial(store, inputs[store.name], store.uri(f"kill-{trial}"),
                                          references[store.name], rng, work))  # fmt: skip
        # last: a driver that has joined a `Cluster` leaves Ray state behind in this process
        for trial in range(args.node_trials):
            record(node_loss_trial(videos, work / f"node-{trial}", rng.uniform(0.0, 2.0)))
    print(f"wrote {args.out}")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_stores(names: list[str], work: Path, stack: contextlib.ExitStack) -> list[Store]:
    stores = []
    for name in names:
        if name == "local":
            stores.append(Store("local", str(work / "local")))
        elif name == "moto":
            from moto.server import ThreadedMotoServer

            port = _free_port()
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()
            stack.callback(server.stop)
            stores.append(Store("moto", "s3://reliability", f"http://127.0.0.1:{port}"))
        elif name == "seaweedfs":
            from tests.seaweedfs import seaweedfs

            identity = {
                "name": "testing",
                "credentials": [{"accessKey": "testing", "secretKey": "testing"}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
            server = stack.enter_context(seaweedfs(work / "weed", [identity]))
            stores.append(Store("seaweedfs", "s3://reliability", server.endpoint))
    return stores


if __name__ == "__main__":
    main()
