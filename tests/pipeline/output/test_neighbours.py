"""Exact nearest neighbours and greedy grouping, on vectors made by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.output.neighbours import ExactIndex, group_greedy


def _unit(*rows: list[float]) -> np.ndarray:
    x = np.asarray(rows, np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_exact_search_ranks_by_cosine_and_pads_missing_places():
    index = ExactIndex(2)
    index.add(np.array([10, 11, 12]), _unit([1, 0], [0, 1], [1, 1]))
    keys, sims = index.search(_unit([1, 0.1]), 4)
    assert keys[0].tolist() == [10, 12, 11, -1]
    # cosines with (1, 0.1)/|.|: 1/1.005 = 0.995, 1.1/(1.005 * 1.414) = 0.774, 0.1/1.005
    assert sims[0][:3] == pytest.approx([0.99504, 0.77395, 0.09950], abs=1e-4)
    assert sims[0][3] == -np.inf


def test_greedy_grouping_keeps_the_first_and_points_at_kept_clips_only():
    """Clips 0 and 1 are 0.005 apart (cosine distance), 2 is close to 1 but 0.02 from 0 ...
    with threshold 0.01: 0 kept, 1 -> 0, 2 -> 0 only if within 0.01 of a kept clip; here 2 is
    0.0178 from 0 so it is kept itself (a chain 2 -> 1 -> 0 is never made), 3 is far: kept."""
    a = np.deg2rad([0.0, 5.73, 10.9, 90.0])  # cos(5.73 deg) = 0.995, cos(10.9 deg) = 0.982
    x = np.stack([np.cos(a), np.sin(a)], 1).astype(np.float32)
    index = ExactIndex(2)
    grouping = group_greedy([0, 1, 2, 3], x, 0.01, index)
    assert grouping.duplicate_of.tolist() == [-1, 0, -1, -1]
    assert grouping.distance[1] == pytest.approx(0.005, abs=2e-4)
    assert len(index) == 3  # the kept ones, for the next call


def test_a_later_call_decides_against_what_earlier_calls_kept():
    index = ExactIndex(2)
    group_greedy([0], _unit([1, 0]), 0.05, index)
    later = group_greedy([7, 8], _unit([1, 0.01], [0, 1]), 0.05, index)
    assert later.duplicate_of.tolist() == [0, -1]


def test_batches_see_the_clips_kept_in_earlier_batches():
    x = _unit([1, 0], [1, 0.001], [1, 0.002])
    grouping = group_greedy([0, 1, 2], x, 0.01, ExactIndex(2), batch=1)
    assert grouping.duplicate_of.tolist() == [-1, 0, 0]


def test_zero_vectors_are_never_grouped():
    x = np.zeros((2, 3), np.float32)
    assert group_greedy([0, 1], x, 0.5, ExactIndex(3)).duplicate_of.tolist() == [-1, -1]
