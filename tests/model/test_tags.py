"""Tags: parsing generated lists, and taxonomy scoring that reuses the visual tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model import build_prompt, parse_tags, tokenize_with_video
from model.tags import answer_variants, score_taxonomy
from tests.helpers import build_tiny_model

QUESTION = "Does the tag '{tag}' apply to this video? Answer yes or no."
TAXONOMY = ["red", "circle", "moving left", "a much longer tag about the scene", "still"]


@pytest.mark.parametrize(
    "text,tags",
    [
        ("red, circle, moving left", ["red", "circle", "moving left"]),
        ("Tags: Red, CIRCLE;  moving   LEFT.", ["red", "circle", "moving left"]),
        ("- dog\n- beach\n- dog", ["dog", "beach"]),
        ("1. dog 2) cat", ["dog 2) cat"]),
        ("\"sunset\", 'sea', ", ["sunset", "sea"]),
        ("", []),
        (" , ;; ", []),
    ],
)
def test_parse_tags(text, tags):
    assert parse_tags(text) == tags


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(seed=5)


def clips(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(3, 56, 56, 3), dtype=np.uint8) for _ in range(n)]


def full_sequence_scores(model, video, taxonomy):
    """Reference: every (clip, tag, answer) sequence run from scratch, no cache sharing."""
    out = np.zeros((video.shape[0], len(taxonomy)), dtype=np.float32)
    for c in range(video.shape[0]):
        for t, tag in enumerate(taxonomy):
            prompt = tokenize_with_video(build_prompt(QUESTION.format(tag=tag)), model.tokenizer)
            likelihood = {True: 0.0, False: 0.0}
            for is_yes, answer in answer_variants(model.tokenizer):
                batch = model.embed_prompts([prompt + answer], video[c : c + 1])
                with torch.no_grad():
                    logits = model.language_model(inputs_embeds=batch.embeds).logits[0]
                steps = logits[-len(answer) - 1 : -1].log_softmax(-1)
                likelihood[is_yes] += float(steps[torch.arange(len(answer)), answer].sum().exp())
            out[c, t] = likelihood[True] / (likelihood[True] + likelihood[False])
    return out


def test_taxonomy_scores_equal_full_recompute(tiny):
    with torch.no_grad():
        video = tiny.encode_frames(clips())
    scores = score_taxonomy(tiny, video, TAXONOMY, QUESTION)
    assert scores.shape == (3, len(TAXONOMY)) and scores.dtype == np.float32
    assert np.all((scores > 0) & (scores < 1))
    np.testing.assert_allclose(scores, full_sequence_scores(tiny, video, TAXONOMY), atol=1e-5)


def test_taxonomy_scoring_runs_the_vision_tower_once(tiny):
    calls = []
    handle = tiny.vision_tower.register_forward_hook(lambda *args: calls.append(1))
    try:
        tiny.score_tags(clips(2), TAXONOMY, QUESTION)
    finally:
        handle.remove()
    assert len(calls) == 1


def test_taxonomy_chunks_give_same_scores(tiny, monkeypatch):
    import model.tags as tags_module

    with torch.no_grad():
        video = tiny.encode_frames(clips(2, seed=1))
    whole = score_taxonomy(tiny, video, TAXONOMY, QUESTION)
    monkeypatch.setattr(tags_module, "ROWS_PER_PASS", 3)
    np.testing.assert_allclose(score_taxonomy(tiny, video, TAXONOMY, QUESTION), whole, atol=1e-6)


def test_question_without_tag_slot_is_refused(tiny):
    with torch.no_grad():
        video = tiny.encode_frames(clips(1))
    with pytest.raises(ValueError, match=r"\{tag\}"):
        score_taxonomy(tiny, video, TAXONOMY, "Is this a video?")
