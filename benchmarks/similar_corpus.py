"""Synthetic stored clips for the similar/dedup scale benchmark: vectors shaped like the real
ones (unit length, float16, clustered), a known share of them copies of earlier clips.

Real footage fingerprints and embeddings cluster (a dataset has many shots of a few kinds of
scene), so both are drawn around `n / 100` centres; `COPY_SHARE` of the clips are copies of an
earlier clip (its vectors plus a little noise, cosine distance about 0.02, as a re-encode).
The clips go into a real output through a `RunCommitter` (Parquet parts of `CLIPS_SCHEMA`,
chunk and run records), so dedup and `similar` read them as they read a run's.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.storage import filesystem, is_remote
from pipeline.core.vectors import EMBED_DIM, FOOTAGE_DIM
from pipeline.output.chunks import Chunk
from pipeline.output.commit import RunCommitter
from pipeline.output.records import RunDetails
from pipeline.output.schema import CLIPS_SCHEMA
from pipeline.output.store import _put_bytes

COPY_SHARE = 0.05
PART_ROWS = 50_000


def _clustered(n: int, dim: int, rng: np.random.Generator, copy_of: np.ndarray) -> np.ndarray:
    centres = rng.standard_normal((max(10, n // 100), dim)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)]
    x += 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    copies = np.flatnonzero(copy_of >= 0)
    x[copies] = x[copy_of[copies]] + 0.2 / np.sqrt(dim) * rng.standard_normal(
        (len(copies), dim)
    ).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float16)


def vectors(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray, int]:
    """`(footage, embedding, copies)` of `n` clips, float16 (a copy's vectors are near an
    earlier original's)."""
    rng = np.random.default_rng(seed)
    copy_of = np.full(n, -1, np.int64)
    picked = np.flatnonzero(rng.random(n) < COPY_SHARE)
    picked = picked[picked > 0]
    copy_of[picked] = (rng.random(len(picked)) * picked).astype(np.int64)
    copy_of[picked] = np.where(
        copy_of[copy_of[picked]] >= 0, copy_of[copy_of[picked]], copy_of[picked]
    )
    footage, embedding = (
        _clustered(n, FOOTAGE_DIM, rng, copy_of),
        _clustered(n, EMBED_DIM, rng, copy_of),
    )
    return footage, embedding, int((copy_of >= 0).sum())


def _fixed(x: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(x.ravel(), pa.float16()), x.shape[1])


def _part(start: int, footage: np.ndarray, embedding: np.ndarray, t0: datetime) -> pa.Table:
    n = len(footage)
    ids = [f"c{i:07d}" for i in range(start, start + n)]
    columns = {name: pa.nulls(n, CLIPS_SCHEMA.field(name).type) for name in CLIPS_SCHEMA.names}
    columns.update(
        run_id=pa.array(["bench"] * n), video_uri=pa.array([f"bench://{i}.mp4" for i in ids]),
        video_id=pa.array(ids), clip_id=pa.array(ids), clip_index=pa.array(np.zeros(n, np.int32)),
        start_s=pa.array(np.zeros(n)), end_s=pa.array(np.full(n, 4.0)),
        caption=pa.array([f"caption of {i}" for i in ids]), status=pa.array(["ok"] * n),
        fingerprint=pa.array(ids),
        created_at=pa.array([t0 + timedelta(microseconds=start + i) for i in range(n)],
                            pa.timestamp("us", tz="UTC")),
        embedding=_fixed(embedding), embedding_key=pa.array(["bench@1"] * n),
        footage=_fixed(footage),
    )  # fmt: skip
    return pa.table(columns, schema=CLIPS_SCHEMA)


def write_corpus(out: str, n: int, seed: int = 7) -> int:
    """Commit `n` synthetic clips to `out` as run `bench`; returns how many are copies."""
    footage, embedding, copies = vectors(n, seed)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    committer = RunCommitter(out, "bench", "a1", date(2026, 1, 1), None)
    fs = filesystem(out)
    committer.on_write_start()
    for start in range(0, n, PART_ROWS):
        stop = min(n, start + PART_ROWS)
        table = _part(start, footage[start:stop], embedding[start:stop], t0)
        uri = committer.target.new_part_uri()
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        _put_bytes(fs, uri, buffer.getvalue(), remote=is_remote(out))
        videos = table["video_uri"].to_pylist()
        committer.commit_chunk(Chunk([uri], table.num_rows, {"ok": table.num_rows}, videos))
    committer.on_write_complete(RunDetails())
    return copies
