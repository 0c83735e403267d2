"""Frame preprocessing (torch ops, batched) against what the published model was trained with."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from model import FrameProcessor, build_prompt, tokenize_with_video
from model.processing import build_training_text
from tests.helpers import UPSTREAM


def textured_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = 120 + 100 * np.sin(x / 9.0) * np.cos(y / 13.0)
    frame = np.stack([base, base[::-1], 255 - base], axis=-1)
    return (frame + rng.integers(-20, 20, frame.shape)).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("height,width", [(160, 120), (40, 30), (57, 91)])
def test_resize_matches_pil_bicubic_within_two_levels(height, width):
    frame = textured_frame(height, width)
    processor = FrameProcessor(size=56)
    ours = processor.resize_uint8(torch.from_numpy(frame).permute(2, 0, 1)[None])[0]
    pil = np.asarray(Image.fromarray(frame).resize((56, 56), Image.BICUBIC))
    diff = np.abs(ours.permute(1, 2, 0).numpy() - pil.astype(np.float32))
    assert diff.max() <= 2 and diff.mean() < 0.5


def test_rescale_and_normalise_with_siglip_mean_std():
    frames = np.zeros((2, 56, 56, 3), dtype=np.uint8)
    frames[1] = 255
    out = FrameProcessor(size=56)(frames)
    assert out.shape == (2, 3, 56, 56) and out.dtype == torch.float32
    assert torch.all(out[0] == -1.0) and torch.all(out[1] == 1.0)


def pil_reference(frame: np.ndarray, size: int, mean, std) -> np.ndarray:
    """The published preprocessing, independently: PIL bicubic, /255, (x - mean) / std, CHW."""
    resized = np.asarray(Image.fromarray(frame).resize((size, size), Image.BICUBIC), np.float32)
    return ((resized / 255.0 - np.asarray(mean)) / np.asarray(std)).transpose(2, 0, 1)


def test_batched_leading_dims_each_frame_against_pil():
    """Each of 2x3 frames against its own PIL-made reference, with a non-default mean/std.

    Catches frames mixed up by the reshapes (each frame has its own noise: ~0.15 apart after
    normalising), mean/std applied to the wrong channel or the wrong way round, and a missed
    rescale. Tolerance: two uint8 levels of resize difference, 2/255/0.25.
    """
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.4)
    clips = np.stack([textured_frame(64, 80, s) for s in range(6)]).reshape(2, 3, 64, 80, 3)
    processor = FrameProcessor(size=56, image_mean=mean, image_std=std)
    out = processor(clips)
    assert out.shape == (2, 3, 3, 56, 56) and out.dtype == torch.float32
    for c in range(2):
        for t in range(3):
            expected = pil_reference(clips[c, t], 56, mean, std)
            np.testing.assert_allclose(out[c, t].numpy(), expected, rtol=0, atol=2 / 255 / 0.25)
    bf16 = processor(clips, dtype=torch.bfloat16)
    assert bf16.dtype == torch.bfloat16
    assert torch.equal(bf16, out.to(torch.bfloat16))


def test_frames_already_at_size_are_only_normalised():
    """No resize at the input size: exactly (x / 255 - mean) / std, per channel."""
    frame = textured_frame(56, 56, seed=3)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.4)
    out = FrameProcessor(size=56, image_mean=mean, image_std=std)(frame)
    expected = (frame.astype(np.float32) / 255 - np.asarray(mean, np.float32)) / np.asarray(
        std, np.float32
    )
    np.testing.assert_allclose(out.numpy(), expected.transpose(2, 0, 1), rtol=0, atol=1e-6)
    assert out[0, 10, 20].item() == pytest.approx((frame[10, 20, 0] / 255 - 0.1) / 0.5, abs=1e-6)


def test_reads_mean_std_and_size_from_checkpoint(tmp_path):
    config = {
        "size": {"height": 64, "width": 64},
        "image_mean": [0.1, 0.2, 0.3],
        "image_std": [0.5, 0.5, 0.25],
        "resample": 2,
    }
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(config))
    processor = FrameProcessor.from_checkpoint(tmp_path, default_size=384)
    assert processor.size == 64 and processor.resample == "bilinear"
    assert processor.image_mean == (0.1, 0.2, 0.3) and processor.image_std == (0.5, 0.5, 0.25)
    assert FrameProcessor.from_checkpoint(UPSTREAM / "ckpt_group", default_size=56).size == 56


@pytest.mark.parametrize(
    "frames,error",
    [(np.zeros((2, 8, 8, 3), np.float32), TypeError), (np.zeros((2, 8, 8), np.uint8), ValueError)],
)
def test_bad_frames_get_a_clear_error(frames, error):
    with pytest.raises(error, match="frames must be"):
        FrameProcessor(size=8)(frames)


def test_prompt_template_and_training_text():
    prompt = build_prompt("What happens?")
    assert prompt.endswith("USER: <image>\nWhat happens? ASSISTANT:")
    assert (
        build_training_text("What happens?", "a red circle")
        == prompt + " a red circle<|endoftext|>"
    )


def test_tokenize_with_video_places_one_placeholder():
    from model import load_tokenizer

    tokenizer = load_tokenizer(UPSTREAM / "ckpt_group")
    ids = tokenize_with_video(build_prompt("Describe it."), tokenizer)
    assert ids.count(-200) == 1
    before = tokenizer(build_prompt("Describe it.").split("<image>")[0]).input_ids
    assert ids[: len(before)] == before
