"""Does `clipnote query` stream? Peak memory of queries over a large committed output.

    python -m benchmarks.query_streaming --rows 1000000 --out /tmp/clipnote-query-bench

Writes a committed output of `--rows` clip rows (the `clips` schema, a 2 KB incompressible
"thumbnail" per row, so the data is larger than the memory a streaming reader may use), in
files of 50,000 rows named by one run record, then runs `clipnote query` in a fresh process for
each query below, writing Parquet, and reports the process's peak RSS (`ru_maxrss`), its wall
time and the rows out. The data's size on disk is printed beside: a query that loaded the
rows would need at least that much memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.output.schema import CLIPS_SCHEMA

ROWS_PER_FILE = 50_000
THUMB_BYTES = 2048
QUERIES = {
    "clips_all, every column": "SELECT * FROM clips_all",
    "clips (latest), every column": "SELECT * FROM clips",
    "clips, tag filter": "SELECT clip_id, caption FROM clips WHERE list_contains(tags, 'red')",
    "clips, caption text + time": (
        "SELECT clip_id, start_s FROM clips WHERE caption ILIKE '%left to right%' AND start_s >= 4"
    ),
}
_COLOURS = np.array(["red", "green", "blue", "yellow"])
_MOTIONS = np.array(["moving left", "moving right", "still"])


def _part(start: int, n: int, rng: np.random.Generator) -> pa.Table:
    idx = np.arange(start, start + n)
    video = idx // 4
    colours, motions = _COLOURS[idx % 4], _MOTIONS[idx % 3]
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    thumbs = rng.bytes(THUMB_BYTES * n)
    columns = {
        "run_id": ["bench"] * n,
        "video_uri": [f"s3://videos/v{v:08d}.mp4" for v in video],
        "video_id": [f"{v:016x}" for v in video],
        "clip_id": [f"{v:016x}:{i % 4}" for v, i in zip(video, idx, strict=True)],
        "clip_index": (idx % 4).astype(np.int32),
        "start_s": (idx % 4) * 2.0,
        "end_s": (idx % 4) * 2.0 + 2.0,
        "frame_indices": [[0, 8, 16, 24]] * n,
        "frame_times_s": [[0.0, 0.33, 0.66, 1.0]] * n,
        "video_duration_s": np.full(n, 8.0),
        "video_fps": np.full(n, 24.0, np.float32),
        "width": np.full(n, 640, np.int32),
        "height": np.full(n, 360, np.int32),
        "caption": [
            f"a {c} circle moves from {'left to right' if m == 'moving right' else 'right to left'}"
            for c, m in zip(colours, motions, strict=True)
        ],
        "tags": [[c, "circle", m] for c, m in zip(colours, motions, strict=True)],
        "tag_scores": [[]] * n,
        "thumbnail": [thumbs[i * THUMB_BYTES : (i + 1) * THUMB_BYTES] for i in range(n)],
        "model_id": ["bench"] * n,
        "fingerprint": [f"w{v:08d}:{i % 4}" for v, i in zip(video, idx, strict=True)],
        "prompt_id": ["p"] * n,
        "status": ["ok"] * n,
        "error": [None] * n,
        "decode_s": np.full(n, 0.01, np.float32),
        "annotate_s": np.full(n, 0.02, np.float32),
        "generated_tokens": np.full(n, 12, np.int32),
        "created_at": [now] * n,
    }
    # embedding and footage stay null, as in rows written before issue 20
    return pa.table({f.name: _column(columns, f, n) for f in CLIPS_SCHEMA})


def _column(columns: dict, f: pa.Field, n: int) -> pa.Array:
    return pa.array(columns[f.name], f.type) if f.name in columns else pa.nulls(n, f.type)


def write_output(root: Path, rows: int) -> int:
    """A committed output of `rows` rows; returns its bytes on disk."""
    rng = np.random.default_rng(0)
    data = root / "clips" / "run_date=2026-01-01" / "run_id=bench"
    data.mkdir(parents=True, exist_ok=True)
    files = []
    for n, start in enumerate(range(0, rows, ROWS_PER_FILE)):
        path = data / f"part-{n:05d}.parquet"
        pq.write_table(_part(start, min(ROWS_PER_FILE, rows - start), rng), path)
        files.append(str(path))
    (root / "_runs").mkdir(exist_ok=True)
    record = {
        "run_id": "bench", "run_date": "2026-01-01", "committed_at": "2026-01-01T00:00:00+00:00",
        "attempt": "a1", "attempts": ["a1"], "retired": {}, "files": files,
        "counts": {"ok": rows}, "rows": rows, "seconds": 1.0, "videos": rows // 4,
    }  # fmt: skip
    (root / "_runs" / "bench.json").write_text(json.dumps(record))
    return sum(Path(f).stat().st_size for f in files)


_MEASURE = """
import resource, sys, time
from jobs.query import run_query
t = time.perf_counter()
n = run_query(sys.argv[1], sys.argv[2], "parquet", sys.argv[3])
print(n, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure(output: Path, sql: str, out: Path) -> tuple[int, float, int]:
    """(rows, seconds, peak RSS bytes) of one query in a fresh process."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(output), sql, str(out)],
        capture_output=True, text=True, check=True, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    rows, seconds, rss_kb = done.stdout.strip().splitlines()[-1].split()
    return int(rows), float(seconds), int(rss_kb) * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/clipnote-query-bench"))
    args = parser.parse_args(argv)
    output = args.out / "output"
    if not (output / "_runs" / "bench.json").is_file():
        started = time.perf_counter()
        size = write_output(output, args.rows)
        took = time.perf_counter() - started
        print(f"wrote {args.rows} rows, {size / 1e9:.2f} GB in {took:.0f}s")
    else:
        size = sum(p.stat().st_size for p in (output / "clips").rglob("*.parquet"))
    print(f"data on disk: {size / 1e9:.2f} GB ({args.rows} rows)")
    print(f"{'query':<32} {'rows out':>9} {'seconds':>8} {'peak RSS':>9}")
    for name, sql in QUERIES.items():
        rows, seconds, rss = measure(output, sql, args.out / "result.parquet")
        print(f"{name:<32} {rows:>9} {seconds:>8.1f} {rss / 1e6:>7.0f}MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
