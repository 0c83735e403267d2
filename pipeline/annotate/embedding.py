"""A clip's embedding: the model's own visual tokens of the clip, pooled, in a fixed size.

The annotator already computes the resampler's visual tokens `[B, Q, D]` once per clip for
every question; the embedding is their mean over the Q queries (pooled where the tokens are,
so only `[B, D]` leaves the device), brought to `EMBED_DIM` dimensions, L2-normalised and
stored as float16: 256 bytes a clip whatever the checkpoint, so `similar` and `dedup` index
every output the same way. Nothing here knows torch or the model: the pure part is tested on
arrays made by hand.

Why `EMBED_DIM = 128`: it is the toy checkpoint's width (kept exactly) and keeps a million
clips at 256 MB, the size `benchmarks/similar.py` indexes in minutes on 2 cores. A wider model
(TinyLLaVA-Video's 2048) is projected by a fixed random orthonormal matrix, which keeps
cosines within about `1/sqrt(128)`; the method key says so, and changing any of this changes
`EMBED_METHOD`, which joins the work key, so a changed method re-embeds.
"""

from __future__ import annotations

import numpy as np

from pipeline.core.vectors import EMBED_DIM

EMBED_METHOD = "resampler-mean-rp128-l2-f16-v1"
"""How embeddings are made: resampler tokens, mean over queries, random projection to 128
(seeded by the input width) when wider, zero-padded when narrower, L2, float16."""


def embedding_key(model_key: str) -> str:
    """Provenance of an embedding: the method and the weights (`<method>@<model key>`);
    only embeddings with the same key are comparable."""
    return f"{EMBED_METHOD}@{model_key}"


def _projection(width: int) -> np.ndarray:
    """A fixed `[width, EMBED_DIM]` matrix with orthonormal columns, seeded by `width`."""
    rng = np.random.default_rng(width)
    q, _ = np.linalg.qr(rng.standard_normal((width, EMBED_DIM)))
    return q.astype(np.float32)


_PROJECTIONS: dict[int, np.ndarray] = {}


def embed_pooled(pooled: np.ndarray) -> np.ndarray:
    """Pooled features `[B, D]` -> embeddings `[B, EMBED_DIM]`, unit length, float16.

    A row of zeros (a clip with no signal) stays zeros rather than becoming NaN.
    """
    x = np.asarray(pooled, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected pooled features [B, D], got shape {x.shape}")
    width = x.shape[1]
    if width > EMBED_DIM:
        if width not in _PROJECTIONS:
            _PROJECTIONS[width] = _projection(width)
        x = x @ _PROJECTIONS[width]
    elif width < EMBED_DIM:
        x = np.pad(x, ((0, 0), (0, EMBED_DIM - width)))
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float16)
