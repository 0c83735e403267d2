"""The fixed-shape decoding step against transformers' own pass on the same cache.

The reference is transformers' Qwen2 forward with its `DynamicCache`: the step must give the
same logits, position after position, for padded and unpadded batches, and generation with it
the same tokens as without it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import DynamicCache

from model import GenerationSettings, build_prompt, tokenize_with_video
from model.generation import generate_ids
from model.static_decoding import StaticDecoder, decoder_for, slots_for, supports
from tests.helpers import build_tiny_model


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(seed=5)


def _reference_steps(lm, embeds, mask, positions, tokens):
    """Logits of each token in `tokens` `[steps, B]` after a prefill, by transformers."""
    cache = DynamicCache(config=lm.config)
    lm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, cache=cache)
    out, mask, pos = [], mask, positions[:, -1:]
    for row in tokens:
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        pos = pos + 1
        step = lm(input_ids=row[:, None], attention_mask=mask, position_ids=pos, cache=cache)
        out.append(step.logits[:, -1])
    return out


@pytest.mark.parametrize("lengths", [(7, 7, 7), (9, 4, 6)])
@torch.inference_mode()
def test_steps_give_transformers_logits(tiny, lengths):
    lm = tiny.language_model
    rows, longest, width = len(lengths), max(lengths), lm.config.hidden_size
    gen = torch.Generator().manual_seed(0)
    embeds = torch.randn(rows, longest, width, generator=gen)
    mask = torch.zeros(rows, longest, dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, longest - n :] = 1  # left padding
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    tokens = torch.randint(0, lm.config.vocab_size, (12, rows), generator=gen)
    expected = _reference_steps(lm, embeds, mask, positions, tokens)

    cache = DynamicCache(config=lm.config)
    lm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, cache=cache)
    decoder = StaticDecoder(lm, rows, slots=longest + 12)
    decoder.start(cache, positions[:, -1], mask if len(set(lengths)) > 1 else None)
    for want, row in zip(expected, tokens, strict=True):
        torch.testing.assert_close(decoder.step(row), want, rtol=1e-4, atol=1e-5)


@torch.inference_mode()
def test_a_step_past_the_last_slot_is_refused(tiny):
    lm = tiny.language_model
    cache = DynamicCache(config=lm.config)
    lm(inputs_embeds=torch.randn(1, 3, lm.config.hidden_size), cache=cache)
    decoder = StaticDecoder(lm, rows=1, slots=5)
    decoder.start(cache, torch.tensor([2]), None)
    decoder.step(torch.tensor([1]))
    decoder.step(torch.tensor([1]))
    with pytest.raises(ValueError, match="all 5 cache slots are used"):
        decoder.step(torch.tensor([1]))


def test_slots_round_up_so_two_questions_share_a_decoder():
    assert slots_for(570, 64) == 640
    assert slots_for(590, 32) == 640
    assert slots_for(640, 1) == 768


def test_decoders_are_kept_per_shape_two_at_most(tiny):
    first = decoder_for(tiny, 2, 128)
    assert decoder_for(tiny, 2, 128) is first
    decoder_for(tiny, 3, 128)
    decoder_for(tiny, 4, 128)
    assert decoder_for(tiny, 2, 128) is not first  # the oldest went first


def test_a_sliding_window_model_steps_with_transformers():
    model = build_tiny_model(seed=5)
    prompt = tokenize_with_video(build_prompt("Describe the video."), model.tokenizer)
    rng = np.random.default_rng(3)
    video = model.encode_frames([rng.integers(0, 256, (3, 56, 56, 3), np.uint8) for _ in range(2)])
    settings = GenerationSettings(max_new_tokens=8, stop_ids=(10**9,))
    static = generate_ids(model, video, [prompt] * 2, settings)
    model.language_model.config.use_sliding_window = True
    assert not supports(model.language_model)
    assert generate_ids(model, video, [prompt] * 2, settings) == static
