"""The index dedup and `similar` search: exact while small, a faiss IVF index past that.

faiss was chosen by measurement on the 2-core machine (BENCHMARKS.md, issue 20): on dedup's
pattern (search a batch of 4,096 new clips, add the ones kept) its inverted-file index did
1M vectors of 128 dimensions many times faster than hnswlib's and usearch's graphs, because
adding to an IVF index is one assignment to a centroid where a graph links every vector in.
Below `EXACT_BELOW` vectors the matrix products of `ExactIndex` are exact and still fast, so
the index starts exact and trains its centroids once, on the vectors it holds when it reaches
that size (whether they came one batch or many: 50k vectors train in seconds, where 1M
would take many minutes); later vectors are only assigned (updated, never rebuilt).

Vectors are kept as float16 (`QT_fp16`, no residuals): the columns store float16, so the
index loses nothing they had and takes half the memory of float32.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass, field

import numpy as np

from pipeline.output.neighbours import ExactIndex

EXACT_BELOW = 50_000
"""Vectors held exactly; at this many the IVF centroids are trained (BENCHMARKS.md)."""

NPROBE = 16
"""Inverted lists searched per query: recall >= 0.95 of the exact answer at 1M (BENCHMARKS.md)."""


def _lists_for(n: int) -> int:
    """Centroids for an index trained on `n` vectors: 4 sqrt(n), and at least 39 vectors
    each to train on (faiss's minimum)."""
    return max(1, min(int(4 * np.sqrt(n)), n // 39))


@dataclass
class GrowingIndex:
    """A `VectorIndex` (inner product over unit vectors) that is exact below `exact_below`
    vectors and an IVF index from then on; `to_bytes`/`from_bytes` persist it as it is."""

    dim: int
    exact_below: int = EXACT_BELOW
    nprobe: int = NPROBE
    _exact: ExactIndex | None = None
    _ivf: object | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self._exact is None and self._ivf is None:
            self._exact = ExactIndex(self.dim)

    @property
    def kind(self) -> str:
        return "ivf" if self._ivf is not None else "exact"

    def __len__(self) -> int:
        return int(self._ivf.ntotal) if self._ivf is not None else len(self._exact)

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if not len(keys):
            return
        keys = np.ascontiguousarray(keys, np.int64)
        vectors = np.ascontiguousarray(vectors, np.float32)
        if self._ivf is None:
            room = max(0, self.exact_below - len(self._exact))
            self._exact.add(keys[:room], vectors[:room])
            if len(self._exact) < self.exact_below:
                return
            self._train()  # on the first `exact_below` vectors, whatever the batches
            keys, vectors = keys[room:], vectors[room:]
        if len(keys):
            self._ivf.add_with_ids(vectors, keys)

    def _train(self) -> None:
        import faiss

        keys, vectors = self._exact._packed()
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dim, _lists_for(len(keys)), faiss.ScalarQuantizer.QT_fp16,
            faiss.METRIC_INNER_PRODUCT, False,
        )  # fmt: skip
        ivf.train(vectors)
        ivf.add_with_ids(vectors, keys)
        ivf.nprobe = self.nprobe
        self._ivf, self._exact = ivf, None

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._ivf is None:
            return self._exact.search(vectors, k)
        q = np.ascontiguousarray(vectors, np.float32)
        sims, keys = self._ivf.search(q, k)
        sims = np.where(keys < 0, -np.inf, sims).astype(np.float32)
        return keys.astype(np.int64), sims

    def reconstruct(self, key: int) -> np.ndarray | None:
        """The vector stored under `key` (float32), or None."""
        if self._ivf is None:
            keys, vectors = self._exact._packed()
            at = np.flatnonzero(keys == key)
            return vectors[at[0]] if len(at) else None
        import faiss

        if self._ivf.direct_map.type != faiss.DirectMap.Hashtable:
            self._ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # survives remove_ids
        try:
            return self._ivf.reconstruct(int(key))
        except RuntimeError:
            return None

    def remove(self, keys: np.ndarray) -> None:
        """Drop these keys (a clip annotated again: its old vector goes)."""
        keys = np.asarray(keys, np.int64)
        if not len(keys):
            return
        if self._ivf is not None:
            self._ivf.remove_ids(keys)
            return
        held, vectors = self._exact._packed()
        stay = ~np.isin(held, keys)
        self._exact = ExactIndex(self.dim)
        self._exact.add(held[stay], vectors[stay])

    def to_bytes(self) -> bytes:
        """faiss's own file for an IVF index (so a local one can be memory-mapped back), an
        `.npz` of keys and float16 vectors for an exact one; `kind` says which."""
        if self._ivf is not None:
            import faiss

            return faiss.serialize_index(self._ivf).tobytes()
        keys, vectors = self._exact._packed()
        buffer = io.BytesIO()
        np.savez(buffer, keys=keys, vectors=vectors.astype(np.float16))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, dim: int, kind: str, **settings: int) -> GrowingIndex:
        if kind == "ivf":
            with tempfile.NamedTemporaryFile(suffix=".faiss") as fh:
                fh.write(data)
                fh.flush()
                return cls.from_file(fh.name, dim, kind, **settings)
        if kind != "exact":
            raise ValueError(f"not an index kind this version of clipnote wrote: {kind!r}")
        stored = np.load(io.BytesIO(data))
        exact = ExactIndex(dim)
        exact.add(stored["keys"], stored["vectors"].astype(np.float32))
        return cls(dim, _exact=exact, **settings)

    @classmethod
    def from_file(
        cls, path: str, dim: int, kind: str, read_only: bool = False, **settings: int
    ) -> GrowingIndex:
        """A local file; `read_only` maps an IVF index's lists instead of reading them (a
        1M-clip `similar` index opens in milliseconds instead of 0.4 s; it cannot be added
        to, and stays valid after a later save deletes the file)."""
        if kind != "ivf":
            with open(path, "rb") as fh:
                return cls.from_bytes(fh.read(), dim, kind, **settings)
        import faiss

        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if read_only else 0
        ivf = faiss.read_index(path, flags)
        index = cls(dim, _ivf=ivf, **settings)
        ivf.nprobe = index.nprobe
        return index
