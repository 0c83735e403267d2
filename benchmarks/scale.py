"""Does the driver scale with the number of videos? A 100,000-entry manifest against 10,000.

    python -m benchmarks.scale [--sizes 10000,100000] [--repeats 1]

Each size runs in a fresh driver process (its own local Ray, 2 CPUs, the toy model) over a
manifest of local paths that do not exist: every entry becomes an error row that goes through
the whole pipeline (list -> decode -> annotate -> the driver writes Parquet parts -> chunk
commits), so the driver's own costs (listing, planning, blocks, writing, commits) dominate. Decode
isolation (a supervised child per video) is off here: it costs the same per video at any size
and would hide the driver's share. Reported
per size: driver peak RSS (ru_maxrss of the driver process; Ray's workers are other
processes), wall time, seconds per video, committed rows read back through
`pipeline.output.reading`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_size(videos: int, workdir: Path, again: bool = False) -> dict:
    """Run in this process (a fresh interpreter): the measurement for one manifest size.

    `again`: a nightly (incremental) run over the output the first run wrote, which reads
    what is done through the reading path and skips every video.
    """
    import ray

    from pipeline.config import build_config
    from pipeline.output.reading import read_latest
    from pipeline.run import run_pipeline

    manifest = workdir / f"manifest-{videos}.txt"
    if not again:
        manifest.write_text("".join(f"/nonexistent/clipnote/v{i:07d}.mp4\n" for i in range(videos)))
    output = workdir / f"out-{videos}"
    config = build_config(
        {
            "input": str(manifest),
            "output": str(output),
            "run_id": f"scale-{videos}" + ("-again" if again else ""),
            "model": {"source": "toy", "batch_size": 256},
            "commit": {"chunk_videos": 5000},
            # no per-video decoder child: a missing object never reaches a decoder, and the
            # child's start-up would measure the decode stage, not the driver
            "decode": {"isolate": False},
        }
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")  # fmt: skip
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    summary = run_pipeline(config, mode="incremental" if again else "all")
    seconds = time.perf_counter() - started
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = read_latest(str(output), columns=["video_uri", "status"])
    ray.shutdown()
    return {
        "videos": videos,
        "run": "nightly again" if again else "first",
        "skipped": summary.skipped,
        "seconds": round(seconds, 2),
        "s_per_video_ms": round(1000 * seconds / videos, 3),
        "driver_peak_rss_mib": round(rss_peak / 1024, 1),
        "driver_rss_after_init_mib": round(rss_before / 1024, 1),
        "driver_growth_mib": round((rss_peak - rss_before) / 1024, 1),
        "rows_committed": rows.num_rows,
        "error_rows": sum(1 for s in rows["status"].to_pylist() if s != "ok"),
        "chunks": summary.chunks,
        "files": len(summary.files),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--again", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one, args.workdir, args.again)), flush=True)
        return
    results: dict[str, list[dict]] = {"first": [], "nightly again": []}
    for _ in range(args.repeats):
        for size in (int(s) for s in args.sizes.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                for again in ([], ["--again"]):
                    done = subprocess.run(
                        [sys.executable, "-m", "benchmarks.scale", "--one", str(size),
                         "--workdir", tmp, *again],
                        cwd=ROOT, capture_output=True, text=True, check=True,
                    )  # fmt: skip
                    line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
                    result = json.loads(line)
                    results[result["run"]].append(result)
                    print(line, flush=True)
    for kind, runs in results.items():
        print(kind)
        _ratios(runs)


def _ratios(results: list[dict]) -> None:
    base = results[0]
    for result in results[1:]:
        rss = result["driver_peak_rss_mib"] / base["driver_peak_rss_mib"]
        per_video = result["s_per_video_ms"] / base["s_per_video_ms"]
        growth = result["driver_growth_mib"] - base["driver_growth_mib"]
        extra = result["videos"] - base["videos"]
        print(
            f"{result['videos']} vs {base['videos']} videos: driver peak RSS x{rss:.2f} "
            f"({1024 * 1024 * growth / extra:+.0f} bytes per extra video), "
            f"time per video x{per_video:.2f}, rows committed {result['rows_committed']}"
        )


if __name__ == "__main__":
    main()
