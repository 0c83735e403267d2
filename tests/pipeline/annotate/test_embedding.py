"""Embeddings from pooled features: fixed size, unit length, float16, values worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.annotate.embedding import EMBED_METHOD, embed_pooled, embedding_key
from pipeline.core.vectors import EMBED_DIM


def test_a_narrow_feature_is_padded_and_normalised():
    """[3, 4] has length 5: [0.6, 0.8] then zeros up to EMBED_DIM, in float16."""
    out = embed_pooled(np.array([[3.0, 4.0]]))
    assert out.dtype == np.float16 and out.shape == (1, EMBED_DIM)
    assert out[0, :2].tolist() == [np.float16(0.6), np.float16(0.8)]
    assert not out[0, 2:].any()


def test_a_zero_feature_stays_zero_instead_of_nan():
    out = embed_pooled(np.zeros((2, EMBED_DIM)))
    assert not np.isnan(out.astype(np.float32)).any() and not out.any()


def test_a_wide_feature_is_projected_the_same_way_every_time():
    """A 2048-wide feature (TinyLLaVA-Video's width) becomes EMBED_DIM values of length 1,
    the same for the same input (the projection is fixed by the width), and two inputs whose
    cosine is 1 (one a multiple of the other) stay at cosine 1."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2048))
    a, b = embed_pooled(np.vstack([x, 3 * x])), embed_pooled(x)
    assert a.shape == (2, EMBED_DIM)
    assert np.linalg.norm(a.astype(np.float32), axis=1) == pytest.approx([1.0, 1.0], abs=2e-3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[0], a[1])


def test_orthogonal_wide_features_stay_nearly_orthogonal():
    """The projection keeps cosines within about 1/sqrt(128) ~ 0.09 (Johnson-Lindenstrauss):
    two orthogonal directions do not come out parallel."""
    x = np.zeros((2, 2048))
    x[0, 0], x[1, 1] = 1.0, 1.0
    a = embed_pooled(x).astype(np.float32)
    assert abs(float(a[0] @ a[1])) < 0.3


def test_the_key_names_method_and_weights():
    assert embedding_key("toy@abc") == f"{EMBED_METHOD}@toy@abc"


def test_anything_but_pooled_rows_is_refused():
    with pytest.raises(ValueError, match=r"\[B, D\]"):
        embed_pooled(np.zeros((2, 3, 4)))
