"""The shipped toy checkpoint through the real path: MP4 -> decode -> sampling -> model -> text.

Clips come from a seed training never used (training: 1000+, held-out: 2000+, the published
evaluation: 12345), are written as H.264 MP4 and read back with `pipeline.decode`, so a pass
means the whole inference path gives the right answers, not just the model on ideal pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model import load_model, parse_config
from model.prompts import CAPTION_PROMPT, TAG_PROMPT, TAXONOMY_QUESTION
from jobs.toy.evaluate import (
    EvalClip,
    caption_motion,
    model_num_frames,
    reverse_flip_rate,
    taxonomy_predictions,
    write_and_decode,
)
from model.toy.world import TAXONOMY, reverse_direction

CHECKPOINT = Path(__file__).resolve().parents[3] / "model" / "toy" / "checkpoint"
TEST_SEED = 4242
N_CLIPS = 8

pytestmark = pytest.mark.slow

# Captions, tags and time order meet jobs/toy/evaluate.py's thresholds (TRAINING.md); the
# yes/no taxonomy answers do not yet. This check states that goal; drop the marker once a
# checkpoint meets it.
YES_NO_UNDERTRAINED = pytest.mark.xfail(
    reason="shipped toy checkpoint's yes/no answers miss the taxonomy threshold (TRAINING.md)",
    strict=True,
)


@pytest.fixture(scope="module")
def toy_model():
    torch.set_num_threads(2)
    return load_model(CHECKPOINT, device="cpu")


@pytest.fixture(scope="module")
def clips(toy_model, tmp_path_factory) -> list[EvalClip]:
    return write_and_decode(toy_model, tmp_path_factory.mktemp("toy-mp4"), TEST_SEED, N_CLIPS)


def test_checkpoint_is_small_and_in_published_format():
    files = {p.name: p for p in CHECKPOINT.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(
        files
    )
    assert sum(p.stat().st_size for p in files.values()) < 20_000_000
    raw = json.loads(files["config.json"].read_text())
    assert raw["model_type"] == "tinyllava" and raw["connector_type"] == "groupresampler"
    assert parse_config(raw).to_dict()["clipnote"] == {"num_frames": 8}
    tok_cfg = json.loads(files["tokenizer_config.json"].read_text())
    assert tok_cfg["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert "auto_map" not in tok_cfg


def test_decoded_clips_are_what_the_model_was_trained_on(toy_model, clips):
    assert model_num_frames(toy_model) == 8
    for clip in clips:
        assert clip.frames.shape == (8, 64, 64, 3) and clip.frames.dtype == np.uint8


def test_batched_captions_equal_one_by_one(toy_model, clips):
    frames = [c.frames for c in clips]
    batched = toy_model.caption(frames, CAPTION_PROMPT)
    single = [toy_model.caption([f], CAPTION_PROMPT)[0] for f in frames]
    assert batched == single


def test_batched_captions_match_truth(toy_model, clips):
    batched = toy_model.caption([c.frames for c in clips], CAPTION_PROMPT)
    truth = [c.truth.caption for c in clips]
    misses = [(p, t) for p, t in zip(batched, truth, strict=True) if p != t]
    assert len(misses) <= 1, misses


def test_generated_tags_parse_to_truth(toy_model, clips):
    tags = toy_model.generate_tags([c.frames for c in clips], TAG_PROMPT)
    misses = [
        (p, c.truth.tags) for p, c in zip(tags, clips, strict=True) if p != list(c.truth.tags)
    ]
    assert len(misses) <= 1, misses


@YES_NO_UNDERTRAINED
def test_taxonomy_scores_pick_the_true_tags(toy_model, clips):
    scores = toy_model.score_tags([c.frames for c in clips], list(TAXONOMY), TAXONOMY_QUESTION)
    assert scores.shape == (len(clips), len(TAXONOMY))
    predicted = taxonomy_predictions(scores)
    misses = [
        (p, c.truth.tags)
        for p, c in zip(predicted, clips, strict=True)
        if set(p) != set(c.truth.tags)
    ]
    assert len(misses) <= 1, misses


def test_reversed_frames_flip_the_direction(toy_model, clips):
    moving = [c for c in clips if c.truth.spec.motion != "still"]
    assert moving, "the test seed should give moving clips"
    assert reverse_flip_rate(toy_model, moving) >= 0.9
    forward = toy_model.caption([moving[0].frames], CAPTION_PROMPT)[0]
    backward = toy_model.caption([moving[0].frames[::-1].copy()], CAPTION_PROMPT)[0]
    assert caption_motion(backward) == reverse_direction(caption_motion(forward))
