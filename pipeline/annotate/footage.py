"""A clip's footage fingerprint: what its pixels look like, not what they mean.

Two shots of "a red circle moves left" have the same caption and nearly the same embedding,
yet they are different footage; a re-encoded, rescaled, slightly cropped or re-cut upload of
one of them is the same footage. The fingerprint is the colour layout of the clip's sampled
frames: their mean frame, averaged over an 8 x 8 grid, the three colour channels of the 64
cells less their common mean, L2-normalised (192 values, float16). Two clips are the same
footage when the cosine distance of their fingerprints is at most `FOOTAGE_THRESHOLD`.

Chosen by measurement (BENCHMARKS.md, "Footage fingerprints"), on a generated corpus of 240
toy videos (`jobs/toy/duplicates.py`: 40 originals, 4 copies each, 40 same-caption twins):
this layout reached precision 1.000 and recall 0.990 over all pairs, where a 64-bit
perceptual hash of the grey mean frame reached 0.77 / 0.71, per-frame hashes 0.70 / 0.68,
and grey layouts 0.87 / 0.85 (grey loses the backgrounds' colour); a median over frames
instead of the mean, 4 x 4 or 16 x 16 cells all did worse. The mean over the sampled frames
is what survives a cut half a second later: the frames differ, their average hardly does.
"""

from __future__ import annotations

import numpy as np

from pipeline.core.vectors import FOOTAGE_CELLS, FOOTAGE_DIM

FOOTAGE_METHOD = "mean-frame-rgb8x8-centred-l2-f16-v1"
FOOTAGE_THRESHOLD = 0.17
"""Largest cosine distance between the fingerprints of two clips of the same footage (best F1
on the corpus: same-footage pairs reach 0.226 at the worst, different-footage pairs with the
same caption start at 0.272)."""


def _cells(image: np.ndarray, cells: int) -> np.ndarray:
    """`[H, W, 3]` -> `[cells, cells, 3]` means; edges that do not divide evenly are dropped
    (a few pixels of the model's input size at most)."""
    h, w = image.shape[0] // cells * cells, image.shape[1] // cells * cells
    if h == 0 or w == 0:
        raise ValueError(f"frames of {image.shape[:2]} are smaller than {cells} x {cells}")
    grid = image[:h, :w].reshape(cells, h // cells, cells, w // cells, 3)
    return grid.mean(axis=(1, 3))


def footage_fingerprint(frames: np.ndarray) -> np.ndarray:
    """uint8 frames `[T, H, W, 3]` of one clip -> its fingerprint `[FOOTAGE_DIM]`, float16.

    A flat clip (one colour everywhere) has no layout: its fingerprint is zeros, which is
    never within the threshold of anything (a cosine of 0).
    """
    clip = np.asarray(frames)
    if clip.ndim != 4 or clip.shape[-1] != 3 or clip.shape[0] == 0:
        raise ValueError(f"expected frames [T, H, W, 3], got shape {clip.shape}")
    mean = clip.astype(np.float32).mean(axis=0)
    v = _cells(mean, FOOTAGE_CELLS).transpose(2, 0, 1).ravel()
    v = v - v.mean()
    norm = float(np.linalg.norm(v))
    if norm < 1e-3:
        return np.zeros(FOOTAGE_DIM, np.float16)
    return (v / norm).astype(np.float16)
