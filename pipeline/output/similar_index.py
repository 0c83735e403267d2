"""`similar`'s persisted index: every clip of `clips`, per embedding key, by its combined vector.

The combined vector is the embedding and the footage fingerprint side by side over sqrt(2),
so an inner product is the mean of the two cosines (a blank clip's zero fingerprint adds 0):
the embedding alone found a copy's original for 155 of 160 copies of the generated corpus,
the mean for 160 of 160 (BENCHMARKS.md). The slots keep what `similar` prints, so a query
reads the index and nothing else. `refresh` brings it up to the committed snapshot: a clip
annotated again (a newer `created_at`) or gone from `clips` is removed, new clips are added;
dedup and so the nightly call it, and a `similar` that finds it stale does too.

A writer's save that fails raises (dedup, the nightly: a save is what they are for). A lookup's
save may be refused for want of write access (a reader's S3 credentials, a read-only output):
the lookup already holds the refreshed index in memory, so it answers from it, saves it in the
reader's own cache instead (`reader_cache`: `$CLIPNOTE_CACHE/similar/<digest of the output>`,
the same files as under an output) and says so in one line (`on_unsaved`). The reader's next
lookups answer from that copy while it is up to date with the committed snapshot, instead of
reading every clip's vectors again; a commit since makes it stale, and the next lookup
refreshes again. Any other failure of a lookup's save still raises.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import warnings
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.cache import cache_home
from pipeline.core.storage import StorageOptions
from pipeline.core.vectors import EMBED_DIM, FOOTAGE_DIM
from pipeline.output.index_store import (
    LOAD_TRIES,
    StoredIndex,
    index_folder,
    index_name,
    load_index,
    read_slots,
    save_index,
    saved_names,
    snapshot_digest,
)
from pipeline.output.layout import absolute_output
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


class IndexNotSaved(UserWarning):
    """A lookup refreshed a stale `similar` index but may not save it (no write access)."""


def reader_cache(output: str) -> str:
    """Where a reader keeps the `similar` indexes it may not save under `output`: a folder of
    its own per output (by the output's absolute URI), laid out as an output's `_index`."""
    key = hashlib.sha1(absolute_output(output).encode()).hexdigest()[:16]
    return str(cache_home() / "similar" / key)


def refresh(
    output: str, options: StorageOptions | None = None, digest: str | None = None,
    on_unsaved: Callable[[str], None] | None = None,
) -> list[StoredIndex]:  # fmt: skip
    """Every embedding key's index, brought up to the committed clips and saved. A failed
    save raises, unless `on_unsaved` is given (a lookup's refresh) and the save was refused
    for want of write access: then the indexes are saved in the reader's cache instead
    (`reader_cache`), `on_unsaved` gets one line saying so, once for all keys, and the
    indexes are returned up to date."""
    digest = digest or snapshot_digest(output, options)
    columns = [*SLOTS.names, "embedding_key", "embedding", "footage"]
    table = latest_with(output, "embedding", columns, options)
    keys = table["embedding_key"].fill_null("")
    found: list[StoredIndex] = []
    refused: dict[str, str] = {}  # index folder -> why its save was refused
    for key in pc.unique(keys).to_pylist():
        part = table.filter(pc.equal(keys, key))
        stored = load_index(output, index_name("similar", key), DIM, SLOTS, options)
        if stored.snapshot != digest:
            _update(stored, part)
            stored.snapshot = digest
            try:
                save_index(output, stored, options)
            except OSError as err:
                why = _write_refused(err)
                if on_unsaved is None or why is None:
                    raise
                refused[index_folder(output, stored.name)] = why
        found.append(stored)
    if refused and on_unsaved is not None:
        on_unsaved(_unsaved_line(refused, _save_for_reader(output, found)))
    return found


def _save_for_reader(output: str, indexes: list[StoredIndex]) -> str | None:
    """Save `indexes` (all of them: the reader's copy is read as one set) in the reader's
    cache; its folder, or None when that could not be written either."""
    cache = reader_cache(output)
    try:
        for stored in indexes:
            save_index(cache, stored)
    except OSError:
        return None
    return cache


def _write_refused(err: OSError) -> str | None:
    """Why a save was refused for want of write access (access denied, a read-only file
    system), or None when it failed for any other reason."""
    if isinstance(err, PermissionError):
        for cause in (err, err.__cause__, err.__context__):
            response = getattr(cause, "response", None)
            if isinstance(response, dict) and response.get("Error", {}).get("Code"):
                return f"access denied: {response['Error']['Code']}"  # S3's own word
        return f"access denied: {err.strerror or err}"
    if err.errno == errno.EROFS:
        return "read-only file system"
    return None


def _unsaved_line(refused: dict[str, str], cached: str | None) -> str:
    """The one line a lookup prints when it could not save the indexes it refreshed."""
    where = ", ".join(f"{folder} ({why})" for folder, why in refused.items())
    if cached is not None:
        later = (
            f"a copy is kept in {cached} for your next lookups until the output changes; "
            "others will refresh it again"
        )
    else:
        later = "lookups will refresh it again"
    return (
        f"the refreshed similar index could not be saved to {where}: this answer is up to "
        f"date; {later} until someone with write access runs `clipnote similar` or "
        "`clipnote dedup` on this output (or the nightly saves it)"
    )


def _warn(line: str) -> None:
    warnings.warn(line, IndexNotSaved, stacklevel=2)


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


def _current(indexes: list[StoredIndex], digest: str) -> bool:
    return bool(indexes) and all(s.snapshot == digest for s in indexes)


def nearest(
    output: str, clip_id: str, k: int, options: StorageOptions | None = None,
    on_unsaved: Callable[[str], None] | None = None,
) -> pa.Table:  # fmt: skip
    """The `k` clips nearest to `clip_id` (same embedding key), nearest first, from the saved
    index (brought up to date first if the output changed since, and then answered from that
    refresh in memory: another process may save the same index meanwhile, and a reader may
    not save it at all: `on_unsaved` gets a line saying so, an `IndexNotSaved` warning when
    not given). `LookupError` when `clip_id` is not in `clips` or has no embedding."""
    digest = snapshot_digest(output, options)
    tell = on_unsaved or _warn
    for _ in range(LOAD_TRIES - 1):
        with contextlib.suppress(FileNotFoundError):  # a save dropped what we read: again
            return _nearest_now(output, digest, clip_id, k, options, tell)
    return _nearest_now(output, digest, clip_id, k, options, tell)


def _nearest_now(
    output: str, digest: str, clip_id: str, k: int, options: StorageOptions | None,
    on_unsaved: Callable[[str], None],
) -> pa.Table:  # fmt: skip
    indexes = _saved_for_reading(output, options)
    if _current(indexes, digest):
        return _nearest_in(output, indexes, clip_id, k, options)
    cache = reader_cache(output)
    cached = _saved_for_reading(cache, None) if os.path.isdir(cache) else []
    if _current(cached, digest):  # this reader's own copy, saved when the output refused it
        return _nearest_in(cache, cached, clip_id, k, None)
    indexes = refresh(output, options, digest, on_unsaved)
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
