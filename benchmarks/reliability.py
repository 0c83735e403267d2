"""Faults injected into nightly runs, and what the reading path shows afterwards.

    python -m benchmarks.reliability [--stores local,moto,seaweedfs] [--kill-trials 10]
        [--proxy-trials 2] [--node-trials 1] [--videos 3] [--out RELIABILITY.md]

Every scenario runs the real pipeline (local Ray, the shipped toy model, PyAV-made videos) and
compares `pipeline.output.reading.read_latest` with the clips of one clean run of the same input
(made once, on local disk; rows compare by video name, clip, status, caption and tags, so one
clean run serves every store): rows expected / found / duplicated (a clip more than once) /
lost (missing or different).

- driver SIGKILL: `python -m jobs.nightly` runs as its own driver (a new Ray job on the same
  Ray, so cold workers, as a real night) and is killed with SIGKILL at a random point of the
  run: once it has begun (taken its lease), after 0 to videos-1 committed chunks (one chunk
  per video), plus a random delay within the expected wait for the next chunk (one meant for
  the last gap may land after the last chunk, before the run record: still mid-run). The
  night is then re-run to the end in this process. On the local disk (what `clipnote run` on local
  files writes to), on moto's S3 server and on SeaweedFS.
- faulty S3: a loopback proxy answers 503 SlowDown, resets connections (before the request, or
  after it so the response is lost) or stalls, on a fraction of all S3 requests of the
  driver and the workers (`tests/pipeline/s3_faults.py`).
- node loss: a two-node `ray.cluster_utils.Cluster` on loopback; the node running the work is
  removed mid-run; the run goes on on the other node.

The tests (tests/pipeline/test_sink_faults.py) run the same scenarios (10 kill trials per S3
server); this script adds the local disk and writes RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
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

from pipeline.decode.hook import DECODE_HOOK_ENV
from tests.pipeline.decode.faults import HOOK as FAULTS_HOOK

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


def make_videos(folder: Path, n: int = 6, slow_s: float = 0.0) -> dict[str, bytes]:
    """`n` toy videos of 2 s (two 1 s clips each), by file name. `slow_s`: the i-th video's
    name asks the test decode hook (`tests.pipeline.decode.faults`) to start its decode
    `i * slow_s` late, so that chunks commit seconds apart and a kill can land between two."""
    from model.toy.video_io import write_toy_videos
    from tests.pipeline.decode.faults import slow_name

    folder.mkdir(parents=True, exist_ok=True)
    write_toy_videos(folder, seed=31, n=n, num_frames=48, size=64)
    paths = sorted(folder.glob("*.mp4"))
    return {slow_name(p.name, i * slow_s) if slow_s else p.name: p.read_bytes()
            for i, p in enumerate(paths)}  # fmt: skip


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
    from pipeline.core.storage import StorageOptions

    return StorageOptions(endpoint_url=endpoint)


# -- comparing with a clean run ------------------------------------------------------------


def clip_rows(output: str, endpoint: str | None) -> list[tuple]:
    """(video name, clip index, status, caption, tags) of each row `read_latest` gives."""
    from pipeline.output.reading import read_latest

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
    """Chunks a reader sees as committed (`snapshot`: lists and reads every record)."""
    from pipeline.output.reading import snapshot

    try:
        snap = snapshot(output, options_of(endpoint))
    except Exception:  # a half-written listing: nothing committed yet
        return 0
    return len(snap.chunks) + sum(r.get("chunks", 0) for r in snap.runs.values())


@dataclass
class RunMarks:
    """What a running night has written under `_runs/`, from one LIST (no reads)."""

    leased: bool = False
    """It took the run's lease: listing and planning are done, the run has begun."""
    chunks: int = 0
    """Chunk records written (each written after its chunk's files: the commit point)."""
    finished: bool = False
    """Its run record is written: the night is over."""


@functools.lru_cache(maxsize=8)
def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def run_marks(store: Store, output: str) -> RunMarks:
    """`RunMarks` of the one night written to `output`: cheap enough to poll every 0.1 s, where
    `committed_chunks` costs a GET per record and ~0.1 s of this process's CPU per call."""
    if store.endpoint is None:
        root = Path(output) / "_runs"
        try:
            names = [p.relative_to(root).as_posix() for p in root.rglob("*.json")]
        except (FileNotFoundError, ValueError):  # a folder came or went during the walk
            names = []
    else:
        bucket, _, key = output.removeprefix("s3://").partition("/")
        prefix = f"{key.strip('/')}/_runs/"
        pages = s3_client(store.endpoint).get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        )  # fmt: skip
        names = [o["Key"][len(prefix) :] for page in pages for o in page.get("Contents", [])]
    marks = RunMarks()
    for name in names:
        parts = name.split("/")
        if ".tmp" in name:
            continue
        if len(parts) == 1:
            marks.finished = True
        elif parts[1] == "_lease":
            marks.leased = True
        elif len(parts) == 3 and parts[2].startswith("chunk-"):
            marks.chunks += 1
    return marks


def kill_targets(trials: int, chunks: int, rng: random.Random) -> list[int]:
    """Each trial's kill point, as the chunks committed before it: 0 (before any chunk) to
    `chunks - 1` (before the last), each about as often, in a random order."""
    targets = [i % chunks for i in range(trials)]
    rng.shuffle(targets)
    return targets


@dataclass
class KillClock:
    """How long a cold night driver took from its lease to its first chunk, and between
    chunks, in this store's earlier trials. A kill lands a random delay within the expected
    wait for the next chunk, so it falls mid-run, not after the night already ended."""

    first_chunk_s: list[float] = field(default_factory=list)
    between_chunks_s: list[float] = field(default_factory=list)

    def window(self, target: int) -> float:
        if target == 0:  # the shortest seen: the kill must come before the first chunk
            return min(self.first_chunk_s, default=10.0)
        seen = sorted(self.between_chunks_s)
        return max(POLL_S, seen[len(seen) // 2]) if seen else 1.0

    def observe(self, leased_at: float | None, chunk_times: list[float]) -> None:
        if leased_at is not None and chunk_times:
            self.first_chunk_s.append(chunk_times[0] - leased_at)
        self.between_chunks_s += [b - a for a, b in itertools.pairwise(chunk_times)]


POLL_S = 0.1


def kill_trial(
    store: Store, input_uri: str, output: str, reference: list[tuple], rng: random.Random,
    workdir: Path, target: int, clock: KillClock,
) -> Outcome:  # fmt: skip
    """Start the night as its own driver (`python -m jobs.nightly`, a new Ray job), SIGKILL it
    once it has committed `target` chunks (0: once it has begun, before any chunk) plus a
    random delay within the expected wait for the next one, re-run the night in this
    process to the end, and compare what the reading path gives with the clean run."""
    from jobs.nightly import run_nightly
    from pipeline.config import build_config

    raw = raw_config(input_uri, output, store.endpoint)
    config_path = workdir / f"night-{rng.getrandbits(32):08x}.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    env = {**os.environ, **CREDENTIALS, "RAY_ADDRESS": ray_address(), "PYTHONPATH": str(ROOT)}
    delay_s = rng.uniform(0.0, clock.window(target))
    started = time.monotonic()
    leased_at: float | None = None
    chunk_times: list[float] = []
    marks = RunMarks()
    with open(workdir / f"{config_path.stem}.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobs.nightly", str(config_path), "--date", NIGHT.isoformat()],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        kill_at: float | None = None
        while proc.poll() is None:
            now = time.monotonic() - started
            if kill_at is not None and now >= kill_at:
                os.kill(proc.pid, signal.SIGKILL)
                break
            marks = run_marks(store, output)
            if marks.leased and leased_at is None:
                leased_at = now
            chunk_times += [now] * (marks.chunks - len(chunk_times))
            if kill_at is None and marks.leased and marks.chunks >= target:
                kill_at = now + delay_s
            wait = POLL_S if kill_at is None else min(POLL_S, kill_at - now)
            time.sleep(max(0.0, wait))
        proc.wait()
    killed_at = time.monotonic() - started
    killed = proc.returncode == -signal.SIGKILL
    clock.observe(leased_at, chunk_times)
    chunks_before = committed_chunks(output, store.endpoint)
    rerun = time.monotonic()
    summary = run_nightly(build_config(raw), NIGHT)
    rerun_s = time.monotonic() - rerun
    detail = {
        "kill_point": "before any chunk" if target == 0 else f"after chunk {target}",
        "killed": killed, "exit": proc.returncode, "killed_at_s": round(killed_at, 1),
        "run_began_s": None if leased_at is None else round(leased_at, 1),
        "chunks_seen_at_kill": marks.chunks, "chunks_committed_before_kill": chunks_before,
        "videos_redone": summary.processed, "rerun_s": round(rerun_s, 1),
        "trial_s": round(time.monotonic() - started, 1),
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


NODE_TRIAL_COPIES = 3
"""The node trial runs each video under this many names: a run long enough (about three
times the kill trials') that the node is removed while it still has work to do."""


def node_loss_trial(videos: dict[str, bytes], work: Path, extra_s: float) -> Outcome:
    """Two worker nodes on loopback: a clean run, then a run during which the node that has
    been doing the work is removed (`allow_graceful=False`, like a lost machine) once the run
    has committed its first chunk, plus `extra_s`. `removed_mid_run` says the removal came
    before the run ended (a trial whose run ended first removed nothing)."""
    import threading

    import ray
    from ray._private import services
    from ray.cluster_utils import Cluster

    from jobs.nightly import run_nightly
    from pipeline.config import build_config

    copies = {
        f"{i}-{name}": data for i in range(NODE_TRIAL_COPIES) for name, data in videos.items()
    }
    input_uri = put_videos(Store("local", str(work / "node")), copies)
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
    removed: dict[str, Any] = {"removed_mid_run": False}
    finished = threading.Event()
    try:
        reference = clean_run(input_uri, str(work / "node-reference"), None)

        output = str(work / "node-trial")

        def remove() -> None:
            """Once the run has committed its first chunk (so mid-run), plus a random delay."""
            while committed_chunks(output, None) < 1 and not finished.wait(0.1):
                pass
            if finished.wait(extra_s):
                return
            busy = {a["Address"]["NodeID"] for a in _alive_actors()}
            victim = next((n for n in nodes if n.unique_id in busy), nodes[0])
            removed["chunks_before_removal"] = committed_chunks(output, None)
            cluster.remove_node(victim, allow_graceful=False)
            removed["removed_at_s"] = round(time.monotonic() - started, 1)
            removed["had_the_annotator"] = bool(busy)
            removed["removed_mid_run"] = not finished.is_set()

        started = time.monotonic()
        remover = threading.Thread(target=remove, daemon=True)
        remover.start()
        raw = raw_config(input_uri, output, None)
        try:
            summary = run_nightly(build_config(raw), NIGHT)
        finally:
            finished.set()
            remover.join()
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
    """The table and trials of this run; any other section already in `path` (the cases tried
    on purpose, written by hand) is kept after them."""
    kept = _hand_written_sections(path)
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
    lines += ["", TRIALS_HEADING, ""]
    for outcome in outcomes:
        lines.append(f"- {outcome.scenario} / {outcome.store}: " + json.dumps(asdict(outcome)))
    path.write_text("\n".join(lines) + "\n" + "".join(f"\n{section}" for section in kept))


TRIALS_HEADING = "## Trials"


def _hand_written_sections(path: Path) -> list[str]:
    """The `## ` sections of `path` after the trials (each with its heading), as written."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    sections = ["## " + part for part in text.split("\n## ")[1:]]
    return [s.rstrip("\n") + "\n" for s in sections if not s.startswith(TRIALS_HEADING + "\n")]


def _injected(scenario: str, items: list[Outcome]) -> str:
    if scenario == "driver SIGKILL":
        killed = [o for o in items if o.detail.get("killed")]
        early = sum(o.detail.get("chunks_committed_before_kill") == 0 for o in killed)
        text = f"{len(killed)} kills mid-run: {early} before any chunk, {len(killed) - early} after"
        text += " some chunks"
        if len(killed) < len(items):
            text += f"; {len(items) - len(killed)} drivers ended before their kill"
        times = sorted(o.detail["trial_s"] for o in items if "trial_s" in o.detail)
        if times:
            text += f" (median trial {times[len(times) // 2]:.0f} s)"
        return text
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
    mid_run = sum(bool(o.detail.get("removed_mid_run")) for o in items)
    return f"{mid_run} of {len(items)} runs lost a worker node mid-run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kill-trials", type=int, default=10)
    parser.add_argument("--proxy-trials", type=int, default=2)
    parser.add_argument("--node-trials", type=int, default=1)
    parser.add_argument("--stores", default="local,moto,seaweedfs")
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=ROOT / "RELIABILITY.md")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--slow-s", type=float, default=3.0,
                        help="each video decodes this much later than the one before")  # fmt: skip
    args = parser.parse_args()
    os.environ.update(CREDENTIALS)
    # the tests' decode hook, which honours the slow names (set before any Ray or forkserver)
    os.environ.setdefault(DECODE_HOOK_ENV, FAULTS_HOOK)
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
        videos = make_videos(work / "src", n=args.videos, slow_s=args.slow_s)
        stores = _start_stores(names, work, stack)
        if stores:
            with local_ray():
                # one clean run, on local disk: what every store's reader must give
                local = Store("local", str(work / "clean"))
                reference = clean_run(put_videos(local, videos), local.uri("out"), None)
                inputs = {}
                for store in stores:
                    inputs[store.name] = put_videos(store, videos)
                    if store.name == "moto":
                        bucket = store.root.removeprefix("s3://")
                        for trial in range(args.proxy_trials):
                            record(proxy_trial(store.endpoint, bucket, videos, reference,
                                               args.fault_rate, seed=trial))  # fmt: skip
                targets = {s.name: kill_targets(args.kill_trials, args.videos, rng) for s in stores}
                clocks = {s.name: KillClock() for s in stores}
                for trial in range(args.kill_trials):  # stores take turns
                    for store in stores:
                        record(kill_trial(store, inputs[store.name], store.uri(f"kill-{trial}"),
                                          reference, rng, work, targets[store.name][trial],
                                          clocks[store.name]))  # fmt: skip
        # last: a driver that has joined a `Cluster` leaves Ray state behind in this process
        for trial in range(args.node_trials):
            record(node_loss_trial(videos, work / f"node-{trial}", rng.uniform(0.0, 0.5)))
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
