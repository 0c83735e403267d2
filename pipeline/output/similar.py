"""Similar clips and duplicate footage over the committed `clips` view.

`similar` finds a clip's nearest clips by embedding; `dedup` groups duplicates (footage mode:
the footage fingerprints, `annotate/footage.py`; semantic mode: the embeddings, the curation
tools' diversity filter) and commits the decisions (`dedup_store.py`). Both read the vectors
through the one reading path, so they see exactly the clips `clips` shows; vectors are only
compared within one `embedding_key` (embeddings of another method or model do not compare).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.storage import StorageOptions
from pipeline.output.dedup_store import commit_decisions, decisions_table, read_decisions
from pipeline.output.index_store import (
    PositionIndex,
    StoredIndex,
    empty,
    index_name,
    load_index,
    save_index,
)
from pipeline.output.neighbours import group_greedy
from pipeline.output.similar_index import latest_with, matrix_of, nearest, refresh

VECTOR_OF_MODE = {"footage": "footage", "semantic": "embedding"}

THRESHOLDS = {"footage": 0.17, "semantic": 0.05}
"""Default cosine distances at or below which two clips are duplicates. Footage: measured on
the generated corpus (`annotate/footage.py`). Semantic: SemDeDup's `eps` scale (1 - cosine
similarity; 0.05 keeps one of each near-identical scene), measured on the toy corpus in
BENCHMARKS.md; raise it to thin out more."""

_COLUMNS = ["clip_id", "video_uri", "created_at", "embedding_key", "start_s", "end_s", "caption"]


@dataclass(frozen=True)
class Vectors:
    """The clips that have a vector in `column`, in commit order, and the vectors (float32)."""

    clips: pa.Table
    matrix: np.ndarray


def load_vectors(output: str, column: str, options: StorageOptions | None = None) -> Vectors:
    """Every clip of `clips` with a `column` vector, oldest first (then by clip id)."""
    table = latest_with(output, column, [*_COLUMNS, column], options)
    width = table.schema.field(column).type.list_size
    return Vectors(table.drop_columns([column]), matrix_of(table[column], width))


def similar(
    output: str, clip_id: str, k: int = 10, options: StorageOptions | None = None,
    on_unsaved: Callable[[str], None] | None = None,
) -> pa.Table:  # fmt: skip
    """The `k` clips nearest to `clip_id`, nearest first, with their similarity: the mean of
    the cosines of their embeddings and of their footage fingerprints, from the index saved
    under the output (`similar_index.py`). `LookupError` when `clip_id` is not in `clips` or
    has no embedding. A stale index it refreshed but may not save (read-only credentials or
    output): it answers all the same, and `on_unsaved` gets one line saying so (by default
    an `IndexNotSaved` warning)."""
    return nearest(output, clip_id, k, options, on_unsaved)


@dataclass(frozen=True)
class DedupSummary:
    mode: str
    threshold: float
    decided: int
    kept: int
    duplicates: int


DEDUP_SLOTS = pa.schema([("clip_id", pa.string()), ("created_at", pa.timestamp("us", tz="UTC"))])


def _kept_index(
    output: str, name: str, found: Vectors, kept: list[int], options: StorageOptions | None
) -> StoredIndex:
    """The saved index of the clips kept so far, with any kept clip it lacks added (a dedup
    killed after committing, before saving); started over if it holds a clip not kept."""
    dim = found.matrix.shape[1]
    stored = load_index(output, name, dim, DEDUP_SLOTS, options)
    ids = found.clips["clip_id"]
    kept_ids = set(ids.take(pa.array(kept, pa.int64())).to_pylist())
    if not set(stored.slot_of()) <= kept_ids:
        stored = empty(name, dim, DEDUP_SLOTS)
    missing = [i for i in kept if ids[i].as_py() not in stored.slot_of()]
    if missing:
        rows = found.clips.take(pa.array(missing, pa.int64())).select(DEDUP_SLOTS.names)
        stored.append(rows, found.matrix[missing])
    return stored


def _decide(
    output: str, mode: str, threshold: float, options: StorageOptions | None,
    touched: list[StoredIndex],
) -> Iterator[pa.Table]:  # fmt: skip
    """Decisions for every clip not decided yet, one table per embedding key; the kept
    clips' indexes it updated go to `touched`, to be saved once the decisions are committed."""
    decided = read_decisions(output, mode, options)
    done = set(decided["clip_id"].to_pylist())
    kept = set(pc.filter(decided["clip_id"], pc.is_null(decided["duplicate_of"])).to_pylist())
    found = load_vectors(output, VECTOR_OF_MODE[mode], options)
    ids = found.clips["clip_id"].to_pylist()
    groups = found.clips["embedding_key"].fill_null("").to_numpy(zero_copy_only=False)
    if mode == "footage":  # the fingerprint does not depend on the model
        groups = np.full(len(ids), "", object)
    uris = found.clips["video_uri"].to_pylist()
    stamps = found.clips["created_at"].to_pylist()
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        is_new = np.fromiter((ids[i] not in done for i in members), bool, len(members))
        new = members[is_new]
        if not len(new):
            continue
        held = [int(i) for i in members if ids[i] in kept]
        stored = _kept_index(output, index_name(f"dedup-{mode}", group), found, held, options)
        row_of = {ids[i]: {"created_at": stamps[i]} for i in new}
        index = PositionIndex(stored, ids, row_of)
        grouping = group_greedy(new, found.matrix[new], threshold, index)
        touched.append(stored)
        dup_of = [None if d < 0 else ids[d] for d in grouping.duplicate_of.tolist()]
        dist = [
            None if d < 0 else float(x)
            for d, x in zip(grouping.duplicate_of, grouping.distance, strict=False)
        ]
        yield decisions_table(
            [ids[i] for i in new], [uris[i] for i in new], dup_of, dist, mode, threshold
        )


def dedup(
    output: str,
    mode: str = "footage",
    threshold: float | None = None,
    options: StorageOptions | None = None,
) -> DedupSummary:
    """Decide every clip of `clips` that no earlier dedup of `mode` decided (each against the
    clips kept before it) and commit the decisions; incremental, so the nightly runs it after
    each night and only the night's clips are new."""
    if mode not in VECTOR_OF_MODE:
        raise ValueError(f"dedup mode must be footage or semantic, got {mode!r}")
    limit = THRESHOLDS[mode] if threshold is None else float(threshold)
    touched: list[StoredIndex] = []
    kept, dups = commit_decisions(
        output, mode, lambda: _decide(output, mode, limit, options, touched), options
    )
    for stored in touched:  # after the commit: an index never holds an uncommitted decision
        save_index(output, stored, options)
    refresh(output, options)  # a writer's: a save that fails raises
    return DedupSummary(mode, limit, kept + dups, kept, dups)
