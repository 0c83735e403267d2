"""End to end: how well decode and annotation overlap in `clipnote run`.

    python -m benchmarks.pipeline [--videos 24] [--model toy]

Three measurements in one process, on one local Ray, on the same toy videos:
  decode-only    - the decode stage alone, materialised (clips/s)
  annotate-only  - the annotation stage alone, on already decoded clips (clips/s)
  full run       - `pipeline.run.run_pipeline` end to end, Parquet and commit included
The ratio full / min(decode-only, annotate-only) is 1.0 when the stages overlap perfectly
and about 0.5 when they run one after the other at equal speed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from model.toy.video_io import write_toy_videos
from pipeline.annotate.stage import AnnotateStage
from pipeline.config import build_config
from pipeline.core.stage import Resources
from pipeline.input.listing import list_videos
from pipeline.ray_data import BatchActor, decode_row
from pipeline.run import run_pipeline, stage_settings


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--model", default="toy")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    work = Path(tempfile.mkdtemp(prefix="clipnote-bench-"))
    write_toy_videos(work / "videos", seed=99, n=args.videos, num_frames=96)
    config = build_config(
        {
            "input": str(work / "videos"),
            "output": str(work / "out"),
            "run_id": "bench",
            "clips": {"mode": "window", "length_s": 2.0, "stride_s": 2.0},
            "model": {"source": args.model, "batch_size": 8},
        }
    )
    decode, annotate = stage_settings(config, "bench")
    refs = [ref.to_row() for ref in list_videos(config.input)]

    def decode_only():
        return (
            ray.data.from_items(refs, override_num_blocks=len(refs))
            .flat_map(decode_row, fn_kwargs={"settings": decode})
            .materialize()
        )

    decoded = decode_only()
    clips = decoded.count()

    stage = AnnotateStage(annotate, batch_size=8, workers=1, resources=Resources(cpus=1))

    def annotate_only():
        decoded.map_batches(
            BatchActor, fn_constructor_kwargs={"stage": stage},
            batch_size=8, batch_format="numpy", concurrency=1, num_cpus=1,
        ).materialize()  # fmt: skip

    results = {"decode_only": [], "annotate_only": [], "full": []}
    for _ in range(args.repeats):
        decode_only()  # untimed: the other stages' runs retire the idle decode workers
        results["decode_only"].append(clips / timed(decode_only))
        results["annotate_only"].append(clips / timed(annotate_only))
        results["full"].append(clips / timed(lambda: run_pipeline(config)))
    medians = {k: statistics.median(v) for k, v in results.items()}
    slower = min(medians["decode_only"], medians["annotate_only"])
    print(
        json.dumps(
            {
                "videos": args.videos,
                "clips": clips,
                "clips_per_s": {k: round(v, 2) for k, v in medians.items()},
                "full_over_slower_stage": round(medians["full"] / slower, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
