"""End to end: how well decode and annotation overlap in `clipnote run`, and what isolation costs.

    python -m benchmarks.pipeline [--videos 24] [--hd-videos 4] [--repeats 3] [--model toy]
    python -m benchmarks.pipeline --keep-workers --repeats 2   # decode warm-up after a run

On one local Ray started as the CLI starts it (`jobs.ray_session.connect`, 2 CPUs), for two sets
of videos: the toy videos (96 frames, 2 s windows) and 60 s 720p H.264 videos like those of
`benchmarks.decode` (10 s windows). For each set, in one alternating loop:
  decode-only    - the decode stage alone, default settings (isolation on), materialised, on
                   the CPUs a run leaves it (the cluster's less the annotate actor's: on 2
                   CPUs, one task at a time); `decode_only_all_cpus` is the same on every CPU
  annotate-only  - the annotation stage alone, on already decoded clips
  full           - `pipeline.run.run_pipeline` end to end with the default settings (isolation
                   on), Parquet and commit included
  full-no-iso    - the same with `decode.isolate: false`
All in clips/s. `full_over_slower_stage` = full / min(decode-only, annotate-only): 1.0 when the
stages overlap perfectly, about 0.5 when they run one after the other at equal speed. Each
stage alone runs on the resources it holds in a run, or the ratio would also count the CPU the
actor reserves (`full_over_slower_stage_all_cpus`: decode alone on every CPU).
`isolation_cost` = full-no-iso / full - 1. The warm-up run of decode-only before each repeat is
untimed and reported (`decode_warmup_s`): it is slow only when Ray had to start fresh workers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.annotate.stage import AnnotateStage
from pipeline.config import RunConfig, build_config
from pipeline.core.stage import Resources
from pipeline.input.listing import list_videos
from pipeline.ray_data import BatchActor, decode_row
from pipeline.run import run_pipeline, stage_settings


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _config(work: Path, videos: Path, model: str, clips: dict, isolate: bool) -> RunConfig:
    return build_config(
        {
            "input": str(videos),
            "output": str(work / ("out" if isolate else "out-no-iso")),
            "run_id": "bench",
            "clips": clips,
            "model": {"source": model, "batch_size": 8},
            "decode": {"isolate": isolate},
        }
    )


def measure(work: Path, videos: Path, model: str, clips: dict, repeats: int) -> dict[str, Any]:
    """The four measurements on the videos in `videos`, alternating, medians of `repeats`."""
    import ray

    config = _config(work, videos, model, clips, isolate=True)
    no_iso = _config(work, videos, model, clips, isolate=False)
    decode, annotate = stage_settings(config, "bench")
    refs = [ref.to_row() for ref in list_videos(config.input)]

    share = max(1, int(ray.cluster_resources()["CPU"] - config.resources.cpus_per_actor))

    def decode_only(tasks: int | None = share):
        compute = ray.data.TaskPoolStrategy(size=tasks) if tasks else None
        return (
            ray.data.from_items(refs, override_num_blocks=len(refs))
            .flat_map(decode_row, fn_kwargs={"settings": decode}, compute=compute)
            .materialize()
        )

    decoded = decode_only(None)
    clips_n = decoded.count()
    stage = AnnotateStage(annotate, batch_size=8, workers=1, resources=Resources(cpus=1))

    def annotate_only():
        decoded.map_batches(
            BatchActor, fn_constructor_kwargs={"stage": stage},
            batch_size=8, batch_format="numpy", concurrency=1, num_cpus=1,
        ).materialize()  # fmt: skip

    results: dict[str, list[float]] = {
        "decode_only": [], "decode_only_all_cpus": [], "annotate_only": [], "full": [],
        "full_no_isolation": [],
    }  # fmt: skip
    warmups = []
    for i in range(repeats):
        warmups.append(round(timed(decode_only), 2))  # untimed: is the decode stage warm?
        results["decode_only"].append(clips_n / timed(decode_only))
        results["decode_only_all_cpus"].append(clips_n / timed(lambda: decode_only(None)))
        results["annotate_only"].append(clips_n / timed(annotate_only))
        order = [("full", config), ("full_no_isolation", no_iso)]
        for name, run_config in order if i % 2 == 0 else order[::-1]:
            results[name].append(clips_n / timed(lambda c=run_config: run_pipeline(c)))
    medians = {k: statistics.median(v) for k, v in results.items()}
    slower = min(medians["decode_only"], medians["annotate_only"])
    slower_all = min(medians["decode_only_all_cpus"], medians["annotate_only"])
    return {
        "videos": len(refs),
        "clips": clips_n,
        "decode_tasks": share,
        "clips_per_s": {k: round(v, 2) for k, v in medians.items()},
        "full_over_slower_stage": round(medians["full"] / slower, 3),
        "full_over_slower_stage_all_cpus": round(medians["full"] / slower_all, 3),
        "isolation_cost": round(medians["full_no_isolation"] / medians["full"] - 1, 3),
        "decode_warmup_s": warmups,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def keep_workers_ab(work: Path, model: str, videos: int, repeats: int) -> dict[str, Any]:
    """Seconds to decode the toy set right after a full run and 3 s idle, on a local Ray with
    Ray's default idle-worker kill (1 s) and with `LOCAL_SYSTEM_CONFIG`, alternating."""
    import ray

    from jobs.ray_session import LOCAL_SYSTEM_CONFIG
    from model.toy.video_io import write_toy_videos

    write_toy_videos(work / "toy", seed=99, n=videos, num_frames=96)
    window = {"mode": "window", "length_s": 2.0, "stride_s": 2.0}
    config = _config(work, work / "toy", model, window, isolate=True)
    decode, _ = stage_settings(config, "bench")
    refs = [ref.to_row() for ref in list_videos(config.input)]
    out: dict[str, list[float]] = {"ray_default": [], "local_system_config": []}
    for _ in range(repeats):
        for name, system in (("ray_default", None), ("local_system_config", LOCAL_SYSTEM_CONFIG)):
            ray.init(
                address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                _node_ip_address="127.0.0.1", _system_config=system,
            )  # fmt: skip
            ray.data.DataContext.get_current().enable_progress_bars = False
            ds = ray.data.from_items(refs, override_num_blocks=len(refs))
            ds = ds.flat_map(decode_row, fn_kwargs={"settings": decode})
            ds.materialize()
            run_pipeline(config)
            time.sleep(3)
            out[name].append(round(timed(ds.materialize), 2))
            ray.shutdown()
    return {"decode_after_full_run_s": out, "load_average": list(os.getloadavg())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, default=24, help="toy videos (0: none)")
    parser.add_argument("--hd-videos", type=int, default=4, help="720p videos (0: none)")
    parser.add_argument("--model", default="toy")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--keep-workers", action="store_true", help="decode warm-up: Ray's idle kill vs ours"
    )
    args = parser.parse_args()
    if args.keep_workers:
        work = Path(tempfile.mkdtemp(prefix="clipnote-bench-"))
        print(json.dumps(keep_workers_ab(work, args.model, args.videos, args.repeats), indent=2))
        return
    from jobs.ray_session import connect
    from model.toy.video_io import write_toy_videos

    connect(num_cpus=2)
    work = Path(tempfile.mkdtemp(prefix="clipnote-bench-"))
    report: dict[str, Any] = {"load_average_start": [round(x, 2) for x in os.getloadavg()]}
    if args.videos:
        write_toy_videos(work / "toy", seed=99, n=args.videos, num_frames=96)
        window = {"mode": "window", "length_s": 2.0, "stride_s": 2.0}
        report["toy"] = measure(work / "t", work / "toy", args.model, window, args.repeats)
    if args.hd_videos:
        from benchmarks.decode import videos as hd_videos

        folder = work / "hd"
        folder.mkdir()
        for path in hd_videos(args.hd_videos):
            (folder / path.name).symlink_to(path)
        window = {"mode": "window", "length_s": 10.0, "stride_s": 10.0}
        report["720p"] = measure(work / "h", folder, args.model, window, args.repeats)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
