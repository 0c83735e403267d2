"""`clipnote demo`: the embedded default, end to end, with no arguments and no network.

Makes a few toy-world videos whose true captions are known, runs the full pipeline on a local
Ray with the shipped toy checkpoint, and shows the captions next to the truth.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from jobs.progress import run_with_display
from pipeline.config import build_config
from pipeline.core.status import STATUS_OK
from pipeline.output.committed import read_committed
from pipeline.run import RunSummary

DEMO_SEED = 2026


def make_demo_videos(folder: Path, count: int) -> dict[str, dict]:
    """Toy videos in `folder`; returns the truth by file name."""
    from model.toy.video_io import TRUTH_FILE, write_toy_videos

    write_toy_videos(folder, seed=DEMO_SEED, n=count)
    truth = {}
    for line in (folder / TRUTH_FILE).read_text().splitlines():
        record = json.loads(line)
        truth[record["file"]] = record
    return truth


def show_captions(summary: RunSummary, truth: dict[str, dict], console: Console) -> int:
    """Print each clip's caption and tags against the truth; returns how many captions match."""
    rows = read_committed(summary.output).to_pylist()
    table = Table(title="captions vs truth")
    for column in ("video", "caption", "tags", "truth", "match"):
        table.add_column(column)
    matches = 0
    for row in sorted(rows, key=lambda r: (r["video_uri"], r["clip_index"])):
        name = Path(row["video_uri"]).name
        expected = truth.get(name, {}).get("caption", "")
        ok = row["caption"] == expected
        matches += ok
        failed = f"[{row['status']}] {row['error']}"
        caption = row["caption"] if row["status"] == STATUS_OK else failed
        table.add_row(name, caption, ", ".join(row["tags"]), expected, "yes" if ok else "no")
    console.print(table)
    return matches


def run_demo(
    out_dir: Path, count: int = 6, console: Console | None = None, verbose: bool = False
) -> RunSummary:
    from concurrent.futures import ThreadPoolExecutor

    from jobs.ray_session import connect

    console = console or Console()
    videos = out_dir / "videos"
    config = build_config(
        {
            "input": str(videos),
            "output": str(out_dir / "output"),
            "run_id": "demo",
            "clips": {"mode": "whole"},
            "model": {"source": "toy", "batch_size": 8},
        }
    )
    with ThreadPoolExecutor(1) as pool:  # Ray's start (seconds) overlaps encoding the videos
        made = pool.submit(make_demo_videos, videos, count)
        connect(verbose=verbose)
        truth = made.result()
    summary = run_with_display(config, console, verbose=verbose)
    matches = show_captions(summary, truth, console)
    console.print(f"{matches}/{count} captions match the truth. Parquet: {summary.output}/clips")
    return summary
