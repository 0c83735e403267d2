"""Indexes persisted under the output, `<output>/_index/<name>/`, updated rather than rebuilt.

An index is three things: the vectors (`GrowingIndex.to_bytes`, `<generation>.index`), the
slots (`<generation>.slots.parquet`: per faiss id, the clip it holds and that row's
`created_at`, plus whatever columns its user keeps, such as `similar`'s display columns), and
`index.json`, which names the generation and the committed snapshot the index is up to date
with. A save writes the two data files under a new generation, then replaces `index.json`
(atomically: a local rename of a temporary file of its own, an S3 PUT): a reader sees the old
index or the new one, never half. Local and S3 alike, through the storage layer.

Who writes: dedup, holding its mode's lease, for `dedup-<mode>-*` (kept clips only), and
whoever brings `similar-*` up to date (dedup, the nightly, a `similar` that found it stale;
one with read-only credentials or output cannot: it keeps a copy in the reader's own cache,
laid out as here: `similar_index.py`).

Concurrent saves (several `similar` processes that each found the index stale) take no lock:
each writes its own generation and its own temporary manifest, and the last `index.json` wins.
Every one of them is a correct cache of the committed output, and each saver already holds its
answer in memory, so losing the race is success, not an error. A lock, or a conditional write
of the manifest, would make the losers wait or skip their save, and a lock needs a lease's
takeover of a dead holder (`lease.py`) for what is only a cache; S3 conditional writes also
give `If-None-Match: *` only, not the compare-and-swap a replaced manifest would need. What
makes it safe is what a save deletes afterwards (`_drop_unnamed`): never the generation the
manifest names now; only generations a manifest named before (the one the save loaded, the one
it replaced, its own once another save replaced it: none is ever named again), and any other
file once it is `STRAY_AGE_S` old (a killed writer's files and temporary manifest, a race's
loser's generation): a file that young may be a concurrent save's data, its manifest not
written yet. So a manifest always names files that exist, and nothing a save leaves behind
outlives the next save by more than `STRAY_AGE_S`. A reader that read a manifest just before a
save dropped its generation finds a file missing and reads the manifest again (`load_index`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.storage import (
    StorageOptions,
    filesystem,
    is_remote,
    join,
    open_for_arrow,
    strip_scheme,
)
from pipeline.output.ann import GrowingIndex
from pipeline.output.layout import absolute_output
from pipeline.output.snapshot import snapshot
from pipeline.output.store import _atomic_text, _put_bytes

INDEX_DIR = "_index"
MANIFEST = "index.json"
SLOT_GROUP = 65_536
"""Slots per Parquet row group: `read_slots` reads the groups of the rows it needs, not all."""
STRAY_AGE_S = 3600.0
"""A file no manifest names, younger than this, may be a save in progress: a save leaves it."""
LOAD_TRIES = 5
"""Reads of the manifest by a reader whose generation a concurrent save kept dropping."""


def index_name(kind: str, group: str) -> str:
    """`kind` (`dedup-footage`, `similar`, ...) and a short digest of the vector group (the
    embedding key: vectors of two models never share an index)."""
    return f"{kind}-{hashlib.sha1(group.encode()).hexdigest()[:12]}"


def snapshot_digest(output: str, options: StorageOptions | None = None) -> str:
    """What the committed clips are right now, in 16 hex digits: the committed files."""
    files = sorted(snapshot(output, options).files)
    return hashlib.sha1("\n".join(files).encode()).hexdigest()[:16]


@dataclass
class StoredIndex:
    """An index and its slots (row `i` of `slots` is faiss id `i`; a null `clip_id`: removed)."""

    name: str
    index: GrowingIndex
    slots: pa.Table
    snapshot: str = ""
    generation: str = ""
    _slot_of: dict[str, int] | None = field(default=None, repr=False)

    def slot_of(self) -> dict[str, int]:
        """clip_id -> its live slot."""
        if self._slot_of is None:
            ids = self.slots["clip_id"].to_pylist()
            self._slot_of = {c: i for i, c in enumerate(ids) if c is not None}
        return self._slot_of

    def append(self, rows: pa.Table, vectors: np.ndarray) -> None:
        """New slots for `rows` (of the slots' schema), their vectors into the index."""
        start = self.slots.num_rows
        self.slots = pa.concat_tables([self.slots, rows.select(self.slots.column_names)])
        self.index.add(np.arange(start, start + rows.num_rows), vectors)
        self._slot_of = None

    def remove(self, slots: np.ndarray) -> None:
        """Forget these slots (their clip was annotated again, or left the view)."""
        if not len(slots):
            return
        self.index.remove(slots)
        mask = np.zeros(self.slots.num_rows, bool)
        mask[slots] = True
        ids = pa.array(np.where(mask, None, self.slots["clip_id"].to_numpy(zero_copy_only=False)))
        self.slots = self.slots.set_column(0, "clip_id", ids.cast(pa.string()))
        self._slot_of = None


def index_folder(output: str, name: str) -> str:
    """Where the index `name` is saved: `<output>/_index/<name>`."""
    return join(absolute_output(output), INDEX_DIR, name)


def empty(name: str, dim: int, slots_schema: pa.Schema) -> StoredIndex:
    return StoredIndex(name, GrowingIndex(dim), slots_schema.empty_table())


def load_index(
    output: str, name: str, dim: int, slots_schema: pa.Schema,
    options: StorageOptions | None = None, read_only: bool = False,
    columns: list[str] | None = None,
) -> StoredIndex:  # fmt: skip
    """The saved index `name`, or an empty one when none was saved (or it is unreadable:
    it is only ever a cache of the committed output). `read_only`: a reader's (a local IVF
    index is memory-mapped); `columns`: only these slot columns (`read_slots` the rest)."""
    root = index_folder(output, name)
    fs = filesystem(root, options)
    schema = pa.schema([slots_schema.field(c) for c in columns or slots_schema.names])
    for _ in range(LOAD_TRIES):
        manifest = _manifest(fs, root)
        try:
            generation, kind = manifest["generation"], manifest["kind"]
            index, slots = _read_generation(fs, root, generation, kind, dim, schema, read_only)
        except FileNotFoundError:  # a newer save dropped it after we read its name: read again
            continue
        except (KeyError, TypeError, ValueError, RuntimeError):
            break
        return StoredIndex(name, index, slots, manifest.get("snapshot", ""), generation)
    return empty(name, dim, schema)


def _manifest(fs: Any, root: str) -> dict:
    """`index.json` as it is now ({} when absent or unreadable). A GET of the whole object,
    never a size some earlier listing cached: a rival's save may have replaced it since."""
    path = strip_scheme(join(root, MANIFEST))
    fs.invalidate_cache(path)
    try:
        found = json.loads(fs.cat_file(path))
    except (FileNotFoundError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _read_generation(
    fs: Any, root: str, generation: str, kind: str, dim: int, schema: pa.Schema,
    read_only: bool,
) -> tuple[GrowingIndex, pa.Table]:  # fmt: skip
    """A generation's vectors and slots; `FileNotFoundError` if a save dropped a file of it."""
    path = strip_scheme(join(root, f"{generation}.index"))
    if is_remote(root):
        with fs.open(path, "rb") as fh:
            index = GrowingIndex.from_bytes(fh.read(), dim, kind)
    else:
        try:
            index = GrowingIndex.from_file(path, dim, kind, read_only)
        except RuntimeError:  # faiss says a missing file in its own words
            if not os.path.exists(path):
                raise FileNotFoundError(path) from None
            raise
    with open_for_arrow(fs, join(root, f"{generation}.slots.parquet")) as fh:
        slots = pq.ParquetFile(fh).read(columns=schema.names, use_threads=False).cast(schema)
    return index, slots


def read_slots(
    output: str, stored: StoredIndex, rows: np.ndarray, columns: list[str],
    options: StorageOptions | None = None,
) -> pa.Table:  # fmt: skip
    """`columns` of these slots, in this order, reading only the row groups that hold them
    (from memory when `stored` holds them: an index just brought up to date and saved, whose
    files a rival's save may already have replaced)."""
    if set(columns) <= set(stored.slots.column_names):
        return stored.slots.select(columns).take(pa.array(rows, pa.int64()))
    path = join(index_folder(output, stored.name), f"{stored.generation}.slots.parquet")
    with open_for_arrow(filesystem(output, options), path) as fh:
        parquet = pq.ParquetFile(fh)
        wanted = sorted({int(r) // SLOT_GROUP for r in rows})
        table = parquet.read_row_groups(wanted, columns=columns, use_threads=False)
    starts = {g: i * SLOT_GROUP for i, g in enumerate(wanted)}
    at = [starts[int(r) // SLOT_GROUP] + int(r) % SLOT_GROUP for r in rows]
    return table.take(pa.array(at, pa.int64()))


def save_index(output: str, stored: StoredIndex, options: StorageOptions | None = None) -> None:
    """Write `stored` as a new generation, point `index.json` at it, drop the files no
    manifest names any more. Safe while other processes save the same index (above)."""
    root = index_folder(output, stored.name)
    fs = filesystem(root, options)
    remote = is_remote(root)
    loaded, generation = stored.generation, secrets.token_hex(6)
    buffer = io.BytesIO()
    pq.write_table(stored.slots, buffer, compression="zstd", row_group_size=SLOT_GROUP)
    _put_bytes(fs, join(root, f"{generation}.index"), stored.index.to_bytes(), remote=remote)
    _put_bytes(fs, join(root, f"{generation}.slots.parquet"), buffer.getvalue(), remote=remote)
    manifest = {
        "generation": generation, "kind": stored.index.kind, "vectors": len(stored.index),
        "slots": stored.slots.num_rows, "snapshot": stored.snapshot,
    }  # fmt: skip
    replaced = _manifest(fs, root).get("generation")
    _atomic_text(fs, join(root, MANIFEST), json.dumps(manifest, indent=1), remote=remote)
    stored.generation = generation
    _drop_unnamed(fs, root, generation, {loaded, replaced})


def _drop_unnamed(fs: Any, root: str, ours: str, superseded: set[str | None]) -> None:
    """Remove what no manifest names now or will again: the generations in `superseded`
    (named by a manifest before ours), ours if a rival's save has replaced it since, and
    anything else `STRAY_AGE_S` older than the manifest (its clock, not ours: S3's own)."""
    current = _manifest(fs, root).get("generation")
    if not current:
        return
    dropped = {g for g in superseded if g} | ({ours} if current != ours else set())
    dropped.discard(current)
    entries = fs.ls(strip_scheme(root), detail=True, refresh=True)
    names = {e["name"].rstrip("/").rsplit("/", 1)[-1]: e for e in entries}
    if MANIFEST not in names:
        return
    now = _modified(names[MANIFEST])
    for base, entry in names.items():
        owner = base.split(".", 1)[0]  # a generation's, or `index` for a temporary manifest
        if base == MANIFEST or owner == current:
            continue
        if owner in dropped or now - _modified(entry) > STRAY_AGE_S:
            with contextlib.suppress(FileNotFoundError):
                fs.rm(entry["name"])


def _modified(entry: dict) -> float:
    """When a listed file was last written, in seconds (local `mtime`, S3 `LastModified`)."""
    if "mtime" in entry:
        return float(entry["mtime"])
    return entry["LastModified"].timestamp()


def saved_names(output: str, prefix: str, options: StorageOptions | None = None) -> list[str]:
    """The names of the saved indexes that start with `prefix`."""
    root = join(absolute_output(output), INDEX_DIR)
    fs = filesystem(root, options)
    try:
        paths = fs.ls(strip_scheme(root), detail=False)
    except FileNotFoundError:
        return []
    names = [p.rstrip("/").rsplit("/", 1)[-1] for p in paths]
    return sorted(n for n in names if n.startswith(prefix))


@dataclass
class PositionIndex:
    """`stored` as a `VectorIndex` keyed by positions in `ids` (what `group_greedy` uses):
    adding gives each clip a new slot, a search answers the position of each slot's clip (-1
    for a clip not in `ids`)."""

    stored: StoredIndex
    ids: list[str]
    row_of: dict[str, dict]
    """clip_id -> the values of the slot columns besides `clip_id`."""

    def __post_init__(self) -> None:
        self._pos = {c: i for i, c in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.stored.index)

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if not len(keys):
            return
        names = self.stored.slots.column_names
        rows = [{"clip_id": self.ids[k], **self.row_of[self.ids[k]]} for k in keys.tolist()]
        table = pa.Table.from_pylist(rows, schema=self.stored.slots.schema).select(names)
        self.stored.append(table, vectors)

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        slots, sims = self.stored.index.search(vectors, k)
        clip_of = self.stored.slots["clip_id"]
        flat = slots.ravel()
        found = flat >= 0
        positions = np.full(flat.shape, -1, np.int64)
        names = clip_of.take(pa.array(flat[found])).to_pylist()
        positions[found] = [self._pos.get(name, -1) for name in names]
        sims = np.where(positions.reshape(slots.shape) < 0, -np.inf, sims).astype(np.float32)
        return positions.reshape(slots.shape), sims
