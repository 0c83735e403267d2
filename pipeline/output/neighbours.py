"""Nearest neighbours by cosine over unit vectors, and the greedy grouping dedup makes of them.

Pure logic over numpy arrays (no I/O): `ExactIndex` answers by blocked matrix products;
`group_greedy` walks clips in the order they were committed and marks each one a duplicate of
the nearest clip kept before it when their cosine distance is at most the threshold, else
keeps it. The order is what makes dedup incremental: a night's new clips are decided against
every clip kept before them and nothing decided earlier changes, and `duplicate_of` always
names a kept clip (never a chain).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

BLOCK = 4096
"""Rows multiplied at once: bounds the `[block, n]` similarity matrix (64 MB at 4k x 4k)."""


class VectorIndex(Protocol):
    """What grouping and `similar` need of an index: add unit vectors, find the nearest."""

    def __len__(self) -> int: ...

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None: ...

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """`(keys [n, k], similarities [n, k])`, best first; missing places: key -1, -inf."""
        ...


@dataclass
class ExactIndex:
    """Every vector in memory, searched by matrix products: exact, and faster than any graph
    below some tens of thousands of vectors (BENCHMARKS.md)."""

    dim: int
    _keys: list[np.ndarray] = field(default_factory=list)
    _vectors: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(k) for k in self._keys)

    def _packed(self) -> tuple[np.ndarray, np.ndarray]:
        if len(self._keys) > 1:
            self._keys = [np.concatenate(self._keys)]
            self._vectors = [np.concatenate(self._vectors)]
        if not self._keys:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        return self._keys[0], self._vectors[0]

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if len(keys):
            self._keys.append(np.asarray(keys, np.int64))
            self._vectors.append(np.asarray(vectors, np.float32))

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        keys, stored = self._packed()
        q = np.asarray(vectors, np.float32)
        out_keys = np.full((len(q), k), -1, np.int64)
        out_sims = np.full((len(q), k), -np.inf, np.float32)
        take = min(k, len(keys))
        if take == 0:
            return out_keys, out_sims
        for start in range(0, len(q), BLOCK):
            sims = q[start : start + BLOCK] @ stored.T
            top = np.argpartition(-sims, take - 1, axis=1)[:, :take]
            top_sims = np.take_along_axis(sims, top, axis=1)
            order = np.argsort(-top_sims, axis=1, kind="stable")
            rows = slice(start, start + len(sims))
            out_keys[rows, :take] = keys[np.take_along_axis(top, order, axis=1)]
            out_sims[rows, :take] = np.take_along_axis(top_sims, order, axis=1)
        return out_keys, out_sims


@dataclass(frozen=True)
class Grouping:
    """Per clip, in the order given: the key of the kept clip it duplicates (-1: kept) and
    the cosine distance to it (NaN when kept)."""

    duplicate_of: np.ndarray
    distance: np.ndarray


def group_greedy(
    keys: Sequence[int] | np.ndarray,
    vectors: np.ndarray,
    threshold: float,
    index: VectorIndex,
    batch: int = BLOCK,
) -> Grouping:
    """Decide `keys` (in commit order) against `index` (the clips kept so far), adding the
    ones kept to it. A clip is a duplicate when the cosine distance to the nearest kept clip
    (earlier in the index, or earlier in this call) is at most `threshold`; a zero vector is
    never anyone's duplicate nor has one."""
    keys = np.asarray(keys, np.int64)
    x = np.asarray(vectors, np.float32)
    dup = np.full(len(keys), -1, np.int64)
    dist = np.full(len(keys), np.nan, np.float32)
    for start in range(0, len(keys), batch):
        part = x[start : start + batch]
        near_keys, near_sims = index.search(part, 1)
        within = part @ part.T
        kept: list[int] = []
        for i in range(len(part)):
            best_key, best_sim = int(near_keys[i, 0]), float(near_sims[i, 0])
            if kept:
                j = int(np.argmax(within[i, kept]))
                if within[i, kept[j]] > best_sim:
                    best_key, best_sim = int(keys[start + kept[j]]), float(within[i, kept[j]])
            if best_key >= 0 and 1.0 - best_sim <= threshold and best_sim > 0:
                dup[start + i], dist[start + i] = best_key, max(0.0, 1.0 - best_sim)
            else:
                kept.append(i)
        chosen = np.asarray(kept, np.int64)
        index.add(keys[start + chosen], part[chosen])
    return Grouping(dup, dist)
