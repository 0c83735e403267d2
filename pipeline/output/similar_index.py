"""`similar`'s persisted index: every clip of `clips`, per embedding key, by its combined vector.

The combined vector is the embedding and the footage fingerprint side by side over sqrt(2),
so an inner product is the mean of the two cosines (a blank clip's zero fingerprint adds 0):
the embedding alone found a copy's original for 155 of 160 copies of the generated corpus,
the mean for 160 of 160 (BENCHMARKS.md). The slots keep what `similar` prints, so a query
reads the index and nothing else. `refresh` brings it up to the committed snapshot: a clip
annotated again (a newer `created_at`) or gone from `clips` is removed, new clips are added;
dedup and so the nightly call it, and a `similar` that finds it stale does too.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.storage import StorageOptions
from pipeline.core.vectors import EMBED_DIM, FOOTAGE_DIM
from pipeline.output.index_store import (
    LOAD_TRIES,
    StoredIndex,
    index_name,
    load_index,
    read_slots,
    save_index,
    saved_names,
    snapshot_digest,
)
from pipeline.output.reading import read_latest

DIM = EMBED_DIM + FOOTAGE_DIM

SLOTS = pa.schema(
    [
        ("clip_id", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("video_uri", pa.string()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("caption", pa.string()),
    ]
)


def matrix_of(column: pa.ChunkedArray, width: int) -> np.ndarray:
    """A fixed-size-list column as float32 rows, zeros where null."""
    out = np.zeros((len(column), width), np.float32)
    values = column.combine_chunks()
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    if valid.any():
        flat = values.filter(values.is_valid()).flatten().to_numpy(zero_copy_only=False)
        out[valid] = np.asarray(flat, np.float32).reshape(-1, width)
    return out


def combined(table: pa.Table) -> np.ndarray:
    """`[embedding, footage] / sqrt(2)` per row (a missing fingerprint: zeros)."""
    both = np.hstack(
        [matrix_of(table["embedding"], EMBED_DIM), matrix_of(table["footage"], FOOTAGE_DIM)]
    )
    return both / np.float32(np.sqrt(2.0))


def _micros(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False)


def latest_with(
    output: str, column: str, columns: list[str], options: StorageOptions | None = None
) -> pa.Table:
    """`columns` of every clip of `clips` that has a `column` vector, oldest first (then by
    clip id): the order dedup decides in and an index is filled in."""
    table = read_latest(output, options, columns=columns)
    table = table.filter(pc.is_valid(table[column]))
    return table.take(
        pc.sort_indices(table, [("created_at", "ascending"), ("clip_id", "ascending")])
    )


def refresh(
    output: str, options: StorageOptions | None = None, digest: str | None = None
) -> list[StoredIndex]:
    """Every embedding key's index, brought up to the committed clips and saved."""
    digest = digest or snapshot_digest(output, options)
    columns = [*SLOTS.names, "embedding_key", "embedding", "footage"]
    table = latest_with(output, "embedding", columns, options)
    keys = table["embedding_key"].fill_null("")
    found = []
    for key in pc.unique(keys).to_pylist():
        part = table.filter(pc.equal(keys, key))
        stored = load_index(output, index_name("similar", key), DIM, SLOTS, options)
        if stored.snapshot != digest:
            _update(stored, part)
            stored.snapshot = digest
            save_index(output, stored, options)
        found.append(stored)
    return found


def _update(stored: StoredIndex, part: pa.Table) -> None:
    current = dict(
        zip(part["clip_id"].to_pylist(), _micros(part["created_at"]).tolist(), strict=True)
    )
    stamps = _micros(stored.slots["created_at"])
    stale = [s for c, s in stored.slot_of().items() if current.get(c) != stamps[s]]
    stored.remove(np.asarray(stale, np.int64))
    held = stored.slot_of()
    fresh = np.asarray([i for i, c in enumerate(part["clip_id"].to_pylist()) if c not in held])
    if len(fresh):
        rows = part.take(pa.array(fresh, pa.int64()))
        stored.append(rows.select(SLOTS.names), combined(rows))


def _saved_for_reading(output: str, options: StorageOptions | None) -> list[StoredIndex]:
    """Every saved `similar` index, read-only, with only its slots' clip ids."""
    names = saved_names(output, "similar-", options)
    return [load_index(output, n, DIM, SLOTS, options, True, ["clip_id"]) for n in names]


def nearest(output: str, clip_id: str, k: int, options: StorageOptions | None = None) -> pa.Table:
    """The `k` clips nearest to `clip_id` (same embedding key), nearest first, from the saved
    index (brought up to date first if the output changed since, and then answered from that
    refresh in memory: another process may save the same index meanwhile). `LookupError`
    when `clip_id` is not in `clips` or has no embedding."""
    digest = snapshot_digest(output, options)
    for _ in range(LOAD_TRIES - 1):
        with contextlib.suppress(FileNotFoundError):  # a save dropped what we read: again
            return _nearest_now(output, digest, clip_id, k, options)
    return _nearest_now(output, digest, clip_id, k, options)


def _nearest_now(
    output: str, digest: str, clip_id: str, k: int, options: StorageOptions | None
) -> pa.Table:
    indexes = _saved_for_reading(output, options)
    if not indexes or any(s.snapshot != digest for s in indexes):
        indexes = refresh(output, options, digest)
    return _nearest_in(output, indexes, clip_id, k, options)


def _nearest_in(
    output: str, indexes: list[StoredIndex], clip_id: str, k: int,
    options: StorageOptions | None,
) -> pa.Table:  # fmt: skip
    for stored in indexes:
        slot = pc.index(stored.slots["clip_id"], clip_id).as_py()
        if slot >= 0:
            break
    else:
        raise LookupError(f"clip {clip_id!r} is not in the clips view, or has no embedding")
    vector = stored.index.reconstruct(slot)
    slots, sims = stored.index.search(vector[None, :], k + 1)
    keep = (slots[0] >= 0) & (slots[0] != slot)
    picked, sims = slots[0][keep][:k], sims[0][keep][:k]
    columns = ["clip_id", "video_uri", "start_s", "end_s", "caption"]
    table = read_slots(output, stored, picked, columns, options)
    return table.add_column(1, "similarity", pa.array(sims, pa.float32()))
