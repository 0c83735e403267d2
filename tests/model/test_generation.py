"""Batched generation: same answer whatever the batch, KV cache equal to full recompute."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from model import GenerationSettings, build_prompt, tokenize_with_video
from model.generation import _pick, generate_ids
from tests.helpers import build_tiny_model


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(seed=11)


def random_clips(shapes, seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=shape, dtype=np.uint8) for shape in shapes]


CLIP_SHAPES = [(3, 56, 56, 3), (4, 56, 56, 3), (3, 80, 64, 3), (1, 56, 56, 3), (3, 56, 56, 3)]


def test_batched_captioning_equals_one_by_one(tiny):
    clips = random_clips(CLIP_SHAPES)
    batched = tiny.caption(clips, "Describe the video.", max_new_tokens=12)
    alone = [tiny.caption([clip], "Describe the video.", max_new_tokens=12)[0] for clip in clips]
    assert batched == alone
    assert len(set(batched)) > 1  # different clips, different answers: the video is read


def test_captions_do_not_depend_on_batch_order(tiny):
    clips = random_clips(CLIP_SHAPES, seed=1)
    forward = tiny.caption(clips, "Describe the video.", max_new_tokens=10)
    backward = tiny.caption(clips[::-1], "Describe the video.", max_new_tokens=10)
    assert forward == backward[::-1]


def greedy_without_cache(model, video_embeds, prompt, steps) -> list[list[int]]:
    """Reference: recompute the whole sequence every step, no KV cache, one row at a time."""
    rows = []
    embed = model.language_model.get_input_embeddings()
    for i in range(video_embeds.shape[0]):
        batch = model.embed_prompts([prompt], video_embeds[i : i + 1])
        seq, produced = batch.embeds, []
        for _ in range(steps):
            with torch.no_grad():
                logits = model.language_model(inputs_embeds=seq).logits[0, -1]
            token = int(logits.argmax())
            produced.append(token)
            seq = torch.cat([seq, embed(torch.tensor([[token]]))], dim=1)
        rows.append(produced)
    return rows


def test_kv_cache_generation_equals_full_recompute(tiny):
    clips = random_clips(CLIP_SHAPES[:3], seed=2)
    prompt = tokenize_with_video(build_prompt("Describe the video."), tiny.tokenizer)
    with torch.no_grad():
        video = tiny.encode_frames(clips)
    settings = GenerationSettings(max_new_tokens=8)
    cached = generate_ids(tiny, video, [prompt] * 3, settings)
    reference = greedy_without_cache(tiny, video, prompt, steps=8)
    stop = tiny.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    for got, ref in zip(cached, reference, strict=True):
        expected = ref[: ref.index(stop)] if stop in ref else ref
        assert got == expected


def test_max_new_tokens_bounds_the_answer(tiny):
    clips = random_clips(CLIP_SHAPES[:2], seed=3)
    prompt = tokenize_with_video(build_prompt("Describe the video."), tiny.tokenizer)
    with torch.no_grad():
        video = tiny.encode_frames(clips)
    ids = generate_ids(tiny, video, [prompt] * 2, GenerationSettings(max_new_tokens=3))
    assert all(len(row) <= 3 for row in ids)


def test_sampling_is_reproducible_with_a_seed_and_the_seed_matters(tiny):
    """Catches an unseeded generator (runs differ) and sampling that ignores its settings
    (greedy under another name: every seed would give the greedy answer)."""
    clips = random_clips(CLIP_SHAPES[:2], seed=4)
    settings = GenerationSettings(max_new_tokens=8, temperature=1.5, top_p=1.0, seed=5)
    first = tiny.caption(clips, "Describe.", settings=settings)
    assert first == tiny.caption(clips, "Describe.", settings=settings)
    greedy = tiny.caption(clips, "Describe.", settings=GenerationSettings(max_new_tokens=8))
    by_seed = [
        tiny.caption(clips, "Describe.", settings=replace(settings, seed=seed)) for seed in range(4)
    ]
    assert len({tuple(c) for c in by_seed}) > 1, "different seeds, different samples"
    assert any(c != greedy for c in by_seed)


# `_pick` on hand-made logits: the distribution each setting must produce, worked out by hand.
# probs p = [0.5, 0.3, 0.15, 0.05]; logits = log p.
P = torch.tensor([0.5, 0.3, 0.15, 0.05])
DRAWS = 40_000


def _frequencies(settings: GenerationSettings) -> list[float]:
    logits = P.log().expand(DRAWS, 4)  # [N, V]: one independent draw per row
    picked = _pick(logits, settings, torch.Generator().manual_seed(0))
    return (torch.bincount(picked, minlength=4).float() / DRAWS).tolist()


@pytest.mark.parametrize(
    "temperature,top_p,expected",
    [
        # T=1, no nucleus: p itself.
        (1.0, 1.0, [0.5, 0.3, 0.15, 0.05]),
        # T=2: softmax(log p / 2) = sqrt(p) / sum(sqrt(p)); sqrt p = .7071 .5477 .3873 .2236,
        # sum 1.8657.
        (2.0, 1.0, [0.379, 0.2936, 0.2076, 0.1199]),
        # T=0.5: p^2 / sum(p^2) = [.25 .09 .0225 .0025] / .365.
        (0.5, 1.0, [0.6849, 0.2466, 0.0616, 0.0068]),
        # top_p=0.6: mass before each token is 0, .5, .8, .95; tokens whose preceding mass
        # exceeds .6 are dropped -> {0, 1} renormalised: .5/.8, .3/.8.
        (1.0, 0.6, [0.625, 0.375, 0.0, 0.0]),
        # top_p=0.4: only the top token has preceding mass <= .4.
        (1.0, 0.4, [1.0, 0.0, 0.0, 0.0]),
        # T=2 then top_p=0.7 on sqrt-probs: preceding mass 0, .379, .673, .880 -> keep {0,1,2}:
        # .7071, .5477, .3873 over 1.6421.
        (2.0, 0.7, [0.4306, 0.3335, 0.2359, 0.0]),
    ],
)
def test_temperature_and_top_p_shape_the_distribution(temperature, top_p, expected):
    """Catches ignoring temperature, ignoring top_p, dividing the wrong way, or a nucleus cut
    one token off (keeping the token that crosses top_p is the published behaviour)."""
    got = _frequencies(GenerationSettings(temperature=temperature, top_p=top_p, seed=0))
    for g, e in zip(got, expected, strict=True):
        assert g == pytest.approx(e, abs=0.012)


def test_temperature_zero_is_argmax_whatever_the_generator():
    logits = torch.tensor([[0.1, 2.0, 1.9, -3.0], [5.0, 4.9, 0.0, 0.0]])
    picked = _pick(logits, GenerationSettings(temperature=0.0, seed=3), torch.Generator())
    assert picked.tolist() == [1, 0]


@pytest.mark.parametrize("kwargs", [{"max_new_tokens": 0}, {"temperature": -1.0}, {"top_p": 0.0}])
def test_bad_generation_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        GenerationSettings(**kwargs)
