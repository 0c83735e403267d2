"""The growing index: exact below its size, faiss IVF from then on; persisted as it is."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.output.ann import GrowingIndex, _lists_for
from pipeline.output.neighbours import ExactIndex


def _clusters(n: int, dim: int, seed: int) -> np.ndarray:
    """`n` unit vectors around n // 10 far-apart centres (each vector's nearest other one
    sits in its own cluster, which an IVF search with a few probes finds)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 10, dim)).astype(np.float32)
    x = centres[np.arange(n) % len(centres)] + 0.05 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_it_turns_ivf_at_its_size_and_answers_as_exact_does():
    x = _clusters(2000, 16, seed=3)
    index = GrowingIndex(16, exact_below=1000, nprobe=8)
    index.add(np.arange(999), x[:999])
    assert index.kind == "exact"
    index.add(np.arange(999, 2000), x[999:])
    assert index.kind == "ivf" and len(index) == 2000
    exact = ExactIndex(16)
    exact.add(np.arange(2000), x)
    got, sims = index.search(x[:200], 2)
    want, want_sims = exact.search(x[:200], 2)
    # [:, 0] is each vector itself; [:, 1] its nearest other, or one as near (float16 ties)
    assert (np.abs(sims[:, 1] - want_sims[:, 1]) < 2e-3).mean() >= 0.95
    assert ((got[:, 1] % 200) == (want[:, 1] % 200)).all()  # in the same cluster
    assert got[:, 0].tolist() == list(range(200))
    assert sims[:, 0] == pytest.approx(np.ones(200), abs=1e-3)  # stored as float16


def test_lists_are_4_sqrt_n_with_39_vectors_each_to_train():
    assert _lists_for(1_000_000) == 4000
    assert _lists_for(1000) == 25  # 4 sqrt(1000) = 126 lists would have 8 vectors each


@pytest.mark.parametrize("n", [50, 2000])
def test_it_comes_back_from_bytes_the_same_and_forgets_what_is_removed(n):
    x = _clusters(n, 16, seed=5)
    index = GrowingIndex(16, exact_below=1000, nprobe=8)
    index.add(np.arange(100, 100 + n), x)
    back = GrowingIndex.from_bytes(index.to_bytes(), 16, index.kind, exact_below=1000, nprobe=8)
    assert back.kind == index.kind and len(back) == n
    assert back.search(x[:20], 1)[0].tolist() == index.search(x[:20], 1)[0].tolist()
    assert back.reconstruct(104) == pytest.approx(x[4], abs=1e-3)
    back.remove(np.array([100, 101]))
    assert len(back) == n - 2 and back.reconstruct(100) is None
    assert back.search(x[:1], 1)[0][0, 0] != 100
    back.add(np.array([7]), x[:1])
    assert back.search(x[:1], 1)[0][0, 0] == 7


def test_an_empty_index_has_no_answer():
    keys, sims = GrowingIndex(4).search(np.ones((1, 4), np.float32) / 2, 2)
    assert keys.tolist() == [[-1, -1]] and sims.tolist() == [[-np.inf, -np.inf]]


def test_it_trains_on_its_first_exact_below_vectors_however_they_come():
    """One batch of 3,000 trains on the first 1,000 (25 lists), as 1,000 then 2,000 would."""
    x = _clusters(3000, 16, seed=9)
    index = GrowingIndex(16, exact_below=1000, nprobe=8)
    index.add(np.arange(3000), x)
    assert index.kind == "ivf" and len(index) == 3000
    assert index._ivf.nlist == 25  # _lists_for(1000), not _lists_for(3000) = 76
    assert index.search(x[2990:2991], 1)[0][0, 0] == 2990


def test_a_saved_ivf_index_opens_mapped_for_reading(tmp_path):
    """`read_only`: the lists stay in the file (memory-mapped), the answers are the same,
    and a vector can still be looked up by key (`similar` starts from the clip's own)."""
    x = _clusters(2000, 16, seed=11)
    index = GrowingIndex(16, exact_below=1000, nprobe=8)
    index.add(np.arange(2000), x)
    path = tmp_path / "i.faiss"
    path.write_bytes(index.to_bytes())
    mapped = GrowingIndex.from_file(str(path), 16, "ivf", read_only=True, nprobe=8)
    assert len(mapped) == 2000
    assert mapped.search(x[:50], 3)[0].tolist() == index.search(x[:50], 3)[0].tolist()
    assert mapped.reconstruct(1500) == pytest.approx(x[1500], abs=1e-3)
