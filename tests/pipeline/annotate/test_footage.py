"""Footage fingerprints on frames made by hand: values worked out on paper."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.annotate.footage import footage_fingerprint
from pipeline.core.vectors import FOOTAGE_DIM


def _red_left_blue_right(t: int = 4, size: int = 64) -> np.ndarray:
    frames = np.zeros((t, size, size, 3), np.uint8)
    frames[:, :, : size // 2, 0] = 255
    frames[:, :, size // 2 :, 2] = 255
    return frames


def test_a_two_colour_layout_by_hand():
    """Red left, blue right: of the 192 cell values (R, G, B planes of 8 x 8), 64 are 255 and
    the rest 0; less their mean 85, the 255s are 170 and the 0s -85; the length is
    sqrt(64 * 170^2 + 128 * 85^2) = 1665.65, so 170 -> 0.10206 and -85 -> -0.05103."""
    fp = footage_fingerprint(_red_left_blue_right()).astype(np.float32)
    assert fp.shape == (FOOTAGE_DIM,)
    red, green, blue = fp[:64].reshape(8, 8), fp[64:128].reshape(8, 8), fp[128:].reshape(8, 8)
    assert red[:, :4] == pytest.approx(np.full((8, 4), 0.10206), abs=1e-4)
    assert red[:, 4:] == pytest.approx(np.full((8, 4), -0.05103), abs=1e-4)
    assert green == pytest.approx(np.full((8, 8), -0.05103), abs=1e-4)
    assert blue[:, 4:] == pytest.approx(np.full((8, 4), 0.10206), abs=1e-4)


def test_the_order_of_the_frames_does_not_matter():
    """The mean frame is what is kept: a clip cut elsewhere, whose frames are the same scenes
    in another order, has the same fingerprint."""
    frames = np.random.default_rng(1).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    assert np.array_equal(footage_fingerprint(frames), footage_fingerprint(frames[::-1]))


def test_a_flat_clip_has_no_layout():
    frames = np.full((3, 16, 16, 3), 90, np.uint8)
    assert not footage_fingerprint(frames).any()


def test_a_size_the_grid_does_not_divide_drops_the_edge():
    """60 px: 7-px cells over the first 56 px; the last 4 columns, here white, are ignored."""
    frames = _red_left_blue_right(size=56)
    wider = np.zeros((4, 56, 60, 3), np.uint8)
    wider[:, :, :56] = frames
    wider[:, :, 56:] = 255
    assert np.array_equal(footage_fingerprint(frames), footage_fingerprint(wider))


def test_anything_but_frames_is_refused():
    with pytest.raises(ValueError, match="frames"):
        footage_fingerprint(np.zeros((0, 8, 8, 3), np.uint8))
