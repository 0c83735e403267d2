"""Numerics in any dtype: buffers the published code computes at build time stay fp32.

The published Qwen2 builds its rotary `inv_freq` in fp32 and never stores it; casting the whole
model to bf16 would round it (up to ~0.4%), which shifts every rotary phase in proportion to
the position, and every generated token sits past the 512 video tokens.
"""

from __future__ import annotations

import torch

from model import load_model
from model.checkpoint import TOY_CHECKPOINT_DIR


def _rotary(model):
    return model.language_model.model.rotary_emb


def test_bf16_load_keeps_rotary_inv_freq_in_fp32():
    model = load_model(TOY_CHECKPOINT_DIR, device="cpu", dtype=torch.bfloat16)
    assert _rotary(model).inv_freq.dtype == torch.float32
    assert model.language_model.lm_head.weight.dtype == torch.bfloat16


def test_bf16_rotary_cos_sin_match_fp32_up_to_position_2048():
    fp32 = load_model(TOY_CHECKPOINT_DIR, device="cpu", dtype=torch.float32)
    bf16 = load_model(TOY_CHECKPOINT_DIR, device="cpu", dtype=torch.bfloat16)
    positions = torch.arange(0, 2049)[None, :]  # [1, 2049]
    x32 = torch.zeros(1, 1, dtype=torch.float32)
    x16 = torch.zeros(1, 1, dtype=torch.bfloat16)
    cos32, sin32 = _rotary(fp32)(x32, positions)
    cos16, sin16 = _rotary(bf16)(x16, positions)
    assert (cos16.float() - cos32).abs().max() <= 1e-2
    assert (sin16.float() - sin32).abs().max() <= 1e-2


def _logits_past_600(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        out = model.language_model(input_ids=ids, use_cache=False)
    return out.logits[0, 600:].float()  # [L - 600, V]


def test_bf16_logits_past_600_are_closer_to_fp32_than_with_a_bf16_inv_freq():
    ids = torch.randint(1, 490, (1, 700), generator=torch.Generator().manual_seed(3))
    fp32 = load_model(TOY_CHECKPOINT_DIR, device="cpu", dtype=torch.float32)
    bf16 = load_model(TOY_CHECKPOINT_DIR, device="cpu", dtype=torch.bfloat16)
    reference = _logits_past_600(fp32, ids)
    kept = (_logits_past_600(bf16, ids) - reference).abs().mean()
    rotary = _rotary(bf16)
    rotary.inv_freq = rotary.inv_freq.to(torch.bfloat16)  # what a plain cast does
    rounded = (_logits_past_600(bf16, ids) - reference).abs().mean()
    assert kept < 0.7 * rounded, (float(kept), float(rounded))
