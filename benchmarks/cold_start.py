"""Cold start of a worker: a fresh interpreter importing what a Ray task runs from.

    python -m benchmarks.cold_start --before /tmp/before --repeats 7

A Ray task of the run unpickles its function from `pipeline.ray_data` (`row_task`,
`BatchActor`), so a cold worker imports that module (and with it everything it imports); the
driver imports `pipeline.run`. Each measurement is a new `python -c "import <module>"` process:
wall time from the parent (interpreter start included), peak RSS from the child's own
`getrusage`, and whether torch ended up in `sys.modules`. `--before` names a checkout of
another commit (made with `git worktree add`); both trees run with this interpreter,
interleaved run by run, so one command gives both columns and their ratio. `python -X
importtime -c "import pipeline.run"`'s total (the cumulative time of `pipeline.run`) is
measured the same way.

    python -m benchmarks.cold_start --demo 3 [--before /tmp/before]

`clipnote demo` end to end (`python -m jobs.cli demo`), `--demo` times per tree, alternating
with `--before`'s when given: the command's wall time from the parent,
the pipeline's own seconds from the run record (`seconds`: `run_pipeline` from start to run
record), and the share of the wall time spent outside the pipeline (interpreter start,
imports, toy videos, Ray's start and stop, the captions table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = ("pipeline.ray_data", "pipeline.output.part_writer", "pipeline.run")
PROBE = (
    "import resource, sys, {module}; "
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 'torch' in sys.modules, "
    "{module}.__file__)"
)


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}


def cold_import(tree: Path, module: str) -> dict[str, float | bool]:
    """One fresh process importing `module` from `tree`: wall s, peak RSS MB, torch loaded."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        cwd=tree, env=_env(tree), capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    rss_kb, torch_loaded, where = done.stdout.split()
    if not Path(where).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"{module} came from {where}, not from {tree}")
    return {"wall_s": wall, "rss_mb": int(rss_kb) / 1024, "torch": torch_loaded == "True"}


def importtime_total(tree: Path, module: str = "pipeline.run") -> float:
    """Seconds `python -X importtime` reports for `module`, everything it imports included."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=tree, env=_env(tree), capture_output=True, text=True, check=True,
    )  # fmt: skip
    pattern = re.compile(rf"^import time:\s+\d+ \|\s+(\d+) \| {re.escape(module)}$", re.M)
    return int(pattern.findall(done.stderr)[-1]) / 1e6


def measure(trees: dict[str, Path], modules: tuple[str, ...], repeats: int) -> dict:
    """Median of `repeats` interleaved runs per tree and module, and the before/after ratio."""
    runs: dict[str, dict[str, list[dict]]] = {n: {m: [] for m in modules} for n in trees}
    totals: dict[str, list[float]] = {n: [] for n in trees}
    for tree in trees.values():  # warm the page cache: the first run reads every file
        for module in modules:
            cold_import(tree, module)
    for _ in range(repeats):
        for name, tree in trees.items():
            for module in modules:
                runs[name][module].append(cold_import(tree, module))
            totals[name].append(importtime_total(tree))
    out: dict = {"modules": {}, "importtime_pipeline_run_s": {}}
    for module in modules:
        row = {}
        for name in trees:
            got = runs[name][module]
            row[name] = {
                "wall_s": statistics.median(r["wall_s"] for r in got),
                "rss_mb": statistics.median(r["rss_mb"] for r in got),
                "torch": any(r["torch"] for r in got),
            }
        if "before" in row:
            row["wall_ratio"] = row["before"]["wall_s"] / row["after"]["wall_s"]
            row["rss_ratio"] = row["before"]["rss_mb"] / row["after"]["rss_mb"]
        out["modules"][module] = row
    for name in trees:
        out["importtime_pipeline_run_s"][name] = statistics.median(totals[name])
    if "before" in trees:
        t = out["importtime_pipeline_run_s"]
        t["ratio"] = t["before"] / t["after"]
    return out


def demo_once(tree: Path) -> dict[str, float]:
    """One `clipnote demo` run from `tree` in a fresh interpreter: wall s, pipeline s, load."""
    import tempfile

    out = Path(tempfile.mkdtemp(prefix="clipnote-demo-bench-"))
    load = os.getloadavg()[0]
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "jobs.cli", "demo", "--out", str(out)],
        cwd=tree, env=_env(tree), capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    record = json.loads((out / "output" / "_runs" / "demo.json").read_text())
    return {"wall_s": wall, "pipeline_s": record["seconds"], "load_1m": load}


def demo_runs(trees: dict[str, Path], repeats: int) -> dict:
    """`clipnote demo` `repeats` times per tree, alternating: wall s, pipeline s and the share
    outside the pipeline, medians; with two trees, the before/after ratio of the wall time."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for i in range(repeats):
        order = list(trees.items())
        for name, tree in order if i % 2 == 0 else order[::-1]:
            runs[name].append(demo_once(tree))
    out: dict = {}
    for name, got in runs.items():
        out[name] = {
            "demo_wall_s": round(statistics.median(r["wall_s"] for r in got), 2),
            "demo_pipeline_s": round(statistics.median(r["pipeline_s"] for r in got), 2),
            "demo_outside_pipeline_share": round(
                statistics.median(1 - r["pipeline_s"] / r["wall_s"] for r in got), 3
            ),
            "runs": [{k: round(v, 2) for k, v in r.items()} for r in got],
        }
    if "before" in out:
        out["wall_ratio"] = round(out["before"]["demo_wall_s"] / out["after"]["demo_wall_s"], 3)
    return out


def format_table(result: dict) -> str:
    lines = ["| import | variant | wall s | peak RSS MB | torch loaded |", "|---|---|---|---|---|"]
    for module, row in result["modules"].items():
        for name in ("before", "after"):
            if name in row:
                r = row[name]
                lines.append(
                    f"| `{module}` | {name} | {r['wall_s']:.2f} | {r['rss_mb']:.0f} | "
                    f"{'yes' if r['torch'] else 'no'} |"
                )
        if "wall_ratio" in row:
            lines.append(
                f"| | before/after | **{row['wall_ratio']:.1f}x** | **{row['rss_ratio']:.1f}x** | |"
            )
    t = result["importtime_pipeline_run_s"]
    lines.append("")
    lines.append(
        "`-X importtime` total of `pipeline.run`: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in t.items() if k != "ratio")
        + (f" ({t['ratio']:.1f}x)" if "ratio" in t else "")
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a checkout of the commit to compare with")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--modules", nargs="+", default=list(MODULES))
    parser.add_argument("--demo", type=int, default=0, help="time `clipnote demo` N times")
    args = parser.parse_args(argv)
    trees = {"after": ROOT} if args.before is None else {"before": args.before, "after": ROOT}
    if args.demo:
        print(json.dumps(demo_runs(trees, args.demo), indent=2))
        return
    result = measure(trees, tuple(args.modules), args.repeats)
    result["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    result["repeats"] = args.repeats
    print(format_table(result))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
