"""Ground-truth checks for the synthetic toy world: grammar, geometry, motion and MP4 round trip.

Motion is verified from pixels alone (centroid of the shape's colour mask), the same evidence a
video model gets, so a passing suite means captions are actually recoverable from the frames.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections import Counter
from pathlib import Path

import decord
import numpy as np
import pytest

from model.toy.video_io import TRUTH_FILE, write_mp4, write_toy_videos
from model.toy.world import (
    COLOUR_RGB,
    COLOURS,
    MOTION_TAGS,
    MOTION_VECTORS,
    MOTIONS,
    SHAPES,
    TAXONOMY,
    ClipSpec,
    ToyClip,
    caption_for,
    make_clips,
    render_clip,
    reverse_direction,
    sample_clip_spec,
    shape_centres,
    tags_for,
)

SIZE = 112
NUM_FRAMES = 16
MIN_TRAVEL = 0.35  # fraction of the frame side a moving shape must cover
MAX_STILL_DRIFT = 0.03
MASK_MAX_DIST = 80.0  # RGB distance to a colour prototype still counted as that colour

CAPTION_RE = re.compile(
    r"^a (red|green|blue|yellow) (circle|cross|triangle) "
    r"(moves from (left to right|right to left|top to bottom|bottom to top)|stays still)$"
)
ALL_COMBOS = list(itertools.product(COLOURS, SHAPES, MOTIONS))


def colour_masks(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per colour name, pixels whose nearest prototype is that colour and close to it."""
    protos = np.asarray([COLOUR_RGB[c] for c in COLOURS], dtype=np.float32)  # [C, 3]
    diff = frames[..., None, :].astype(np.float32) - protos  # [T, H, W, C, 3]
    dist = np.sqrt((diff * diff).sum(-1))  # [T, H, W, C]
    nearest = dist.argmin(-1)  # [T, H, W]
    close = dist.min(-1) < MASK_MAX_DIST  # [T, H, W]
    return {c: close & (nearest == i) for i, c in enumerate(COLOURS)}


def centroids(mask: np.ndarray) -> np.ndarray:
    """Centroid (x, y) in pixels of each frame's mask, ``[T, 2]``; frames must be non-empty."""
    _, ys, xs = np.indices(mask.shape)
    count = mask.sum(axis=(1, 2))  # [T]
    assert (count > 0).all(), "shape vanished from some frame"
    cx = (xs * mask).sum(axis=(1, 2)) / count  # [T]
    cy = (ys * mask).sum(axis=(1, 2)) / count  # [T]
    return np.stack([cx, cy], axis=1)  # [T, 2]


def assert_motion(frames: np.ndarray, colour: str, motion: str) -> None:
    """Shape centroid moves >= MIN_TRAVEL along the stated direction (or stays put)."""
    size = frames.shape[1]
    c = centroids(colour_masks(frames)[colour])  # [T, 2]
    shift = (c[-1] - c[0]) / size  # [2], frame-relative
    dx, dy = MOTION_VECTORS[motion]
    if motion == "still":
        assert np.abs(c - c[0]).max() / size < MAX_STILL_DRIFT, c
        return
    along = shift @ np.array([dx, dy])
    across = shift @ np.array([dy, dx])
    assert along >= MIN_TRAVEL, (motion, shift)
    assert abs(across) < MAX_STILL_DRIFT, (motion, shift)


def spec_for(colour: str, shape: str, motion: str, seed: int = 0) -> ClipSpec:
    """A random spec pinned to one combination."""
    rng = np.random.default_rng(seed)
    return sample_clip_spec(rng, colour=colour, shape=shape, motion=motion)


def uniform_indices(num_frames: int, k: int) -> list[int]:
    """k frame indices spread uniformly over the clip, as a video model samples them."""
    return np.linspace(0, num_frames - 1, k).round().astype(int).tolist()


def test_make_clips_is_deterministic_by_seed() -> None:
    a, b, other = make_clips(7, 40), make_clips(7, 40), make_clips(8, 40)
    assert a == b
    assert a != other
    np.testing.assert_array_equal(
        render_clip(a[3].spec, NUM_FRAMES, SIZE), render_clip(b[3].spec, NUM_FRAMES, SIZE)
    )


def test_make_clips_is_balanced() -> None:
    clips = make_clips(3, 150)
    counts = Counter((c.spec.colour, c.spec.shape, c.spec.motion) for c in clips)
    assert set(counts) == set(ALL_COMBOS)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert {(c.spec.colour, c.spec.shape, c.spec.motion) for c in clips[:60]} == set(ALL_COMBOS)


def test_specs_are_varied() -> None:
    specs = [c.spec for c in make_clips(5, 200)]
    assert {s.background.kind for s in specs} == {"solid", "gradient", "texture"}
    assert len({s.background.colour_a for s in specs}) > 100
    assert np.ptp([s.size_frac for s in specs]) > 0.08
    assert np.ptp([s.travel_frac for s in specs if s.motion != "still"]) > 0.15
    assert np.ptp([s.start_x for s in specs]) > 0.5
    assert len({s.rgb for s in specs}) > 100
    assert all(0.0 <= s.noise_std <= 5.0 for s in specs)


@pytest.mark.parametrize(("colour", "shape", "motion"), ALL_COMBOS)
def test_caption_and_tags_follow_grammar(colour: str, shape: str, motion: str) -> None:
    spec = spec_for(colour, shape, motion)
    caption = caption_for(spec)
    assert CAPTION_RE.match(caption), caption
    assert caption == caption.lower() and not caption.endswith(".")
    assert caption.startswith(f"a {colour} {shape} ")
    tags = tags_for(spec)
    assert tags == (colour, shape, MOTION_TAGS[motion])
    assert all(t in TAXONOMY for t in tags)


def test_caption_wording_per_motion() -> None:
    expected = {
        "right": "a red circle moves from left to right",
        "left": "a red circle moves from right to left",
        "down": "a red circle moves from top to bottom",
        "up": "a red circle moves from bottom to top",
        "still": "a red circle stays still",
    }
    for motion, caption in expected.items():
        assert caption_for(spec_for("red", "circle", motion)) == caption


def test_taxonomy_and_reverse_direction() -> None:
    assert len(TAXONOMY) == len(set(TAXONOMY)) == 12
    assert set(MOTION_TAGS.values()) == {
        "moving left",
        "moving right",
        "moving up",
        "moving down",
        "still",
    }
    pairs = {"left": "right", "right": "left", "up": "down", "down": "up", "still": "still"}
    for motion, reverse in pairs.items():
        assert reverse_direction(motion) == reverse
        assert reverse_direction(reverse_direction(motion)) == motion


def test_shape_stays_inside_frame_for_many_specs() -> None:
    rng = np.random.default_rng(11)
    for _ in range(2000):
        spec = sample_clip_spec(rng)
        half = spec.size_frac / 2
        path = shape_centres(spec, 2, 1)  # [2, 2], frame-relative at size 1
        assert (path - half >= 0).all() and (path + half <= 1).all(), spec
        if spec.motion != "still":
            assert spec.travel_frac >= 0.4


@pytest.mark.parametrize("clip", make_clips(1, 60), ids=lambda c: c.caption.replace(" ", "_"))
def test_rendered_clip_shows_shape_and_motion(clip: ToyClip) -> None:
    spec = clip.spec
    frames = render_clip(spec, NUM_FRAMES, SIZE)  # [T, S, S, 3]
    assert frames.shape == (NUM_FRAMES, SIZE, SIZE, 3) and frames.dtype == np.uint8
    masks = colour_masks(frames)
    min_pixels = 0.25 * spec.size_px(SIZE) ** 2
    for t in (0, NUM_FRAMES - 1):
        assert masks[spec.colour][t].sum() >= min_pixels
        for other in COLOURS:  # background and edges never read as another colour
            if other != spec.colour:
                assert masks[other][t].sum() <= 0.005 * SIZE * SIZE, other
    assert_motion(frames, spec.colour, spec.motion)


def test_reversed_left_clip_looks_like_right_clip() -> None:
    for seed in range(5):
        spec = spec_for("green", "triangle", "left", seed=seed)
        frames = render_clip(spec, NUM_FRAMES, SIZE)
        assert_motion(frames, "green", "left")
        assert_motion(frames[::-1], "green", reverse_direction("left"))
    up = render_clip(spec_for("blue", "cross", "up"), NUM_FRAMES, SIZE)
    assert_motion(up[::-1], "blue", "down")


def test_single_frame_depends_only_on_position_not_direction() -> None:
    """Frame k of a moving clip equals a still clip parked at the same spot (no trails/blur)."""
    spec = spec_for("yellow", "circle", "right", seed=4)
    moving = render_clip(spec, NUM_FRAMES, SIZE)
    k = NUM_FRAMES // 2
    x, y = shape_centres(spec, NUM_FRAMES, SIZE)[k] / SIZE
    still = dataclasses.replace(spec, motion="still", travel_frac=0.0, start_x=x, start_y=y)
    parked = render_clip(still, NUM_FRAMES, SIZE)
    diff = np.abs(moving[k].astype(int) - parked[k].astype(int))
    assert diff.max() <= 1


def test_render_is_size_and_length_independent() -> None:
    spec = spec_for("red", "cross", "down", seed=2)
    for num_frames, size in ((8, 64), (48, 128)):
        assert_motion(render_clip(spec, num_frames, size), "red", "down")


def test_mp4_round_trip_with_decord(tmp_path: Path) -> None:
    spec = spec_for("blue", "circle", "left", seed=9)
    frames = render_clip(spec, 48, 128)  # [T, 128, 128, 3]
    path = tmp_path / "clip.mp4"
    write_mp4(frames, path, fps=24)
    vr = decord.VideoReader(str(path))
    assert len(vr) == 48
    assert vr.get_avg_fps() == pytest.approx(24.0)
    decoded = vr.get_batch(list(range(len(vr)))).asnumpy()  # [T, 128, 128, 3]
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 8
    assert_motion(decoded, "blue", "left")
    sampled = vr.get_batch(uniform_indices(len(vr), 8)).asnumpy()  # [8, 128, 128, 3]
    assert_motion(sampled, "blue", "left")


def test_write_mp4_rejects_odd_size(tmp_path: Path) -> None:
    frames = np.zeros((4, 31, 32, 3), dtype=np.uint8)
    with pytest.raises(ValueError):
        write_mp4(frames, tmp_path / "odd.mp4")


def test_write_toy_videos_manifest_matches_files(tmp_path: Path) -> None:
    written = write_toy_videos(tmp_path, seed=2, n=5, num_frames=24, size=64, fps=12)
    assert [clip for _, clip in written] == make_clips(2, 5)
    rows = [json.loads(line) for line in (tmp_path / TRUTH_FILE).read_text().splitlines()]
    assert len(rows) == 5
    for row, (path, clip) in zip(rows, written, strict=True):
        assert path.parent == tmp_path and path.name == row["file"]
        assert row["caption"] == clip.caption and tuple(row["tags"]) == clip.tags
        assert row["spec"]["motion"] == clip.spec.motion
        vr = decord.VideoReader(str(path))
        assert len(vr) == 24 and vr[0].shape == (64, 64, 3)
        sampled = vr.get_batch(uniform_indices(len(vr), 8)).asnumpy()  # [8, 64, 64, 3]
        assert_motion(sampled, clip.spec.colour, clip.spec.motion)
