"""Light loading: the model is built on the meta device and each tensor is read straight to
its device and dtype; no weight is random-initialised or made in fp32 for a bf16 load, and
what the published code computes at build time keeps its fp32 values."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from model import load_model, save_checkpoint
from model.loading import parameters_on_meta
from tests.helpers import build_tiny_model

RANDOM_INIT = ("uniform_", "normal_", "bernoulli_", "random_", "exponential_", "log_normal_")
ALLOCATION_ONLY = ("empty.memory_format", "empty_strided")
"""Ops that reserve memory without writing it: what `nn.Linear` does before its init."""


class OpLog(TorchDispatchMode):
    """Every aten op run inside, with the device, dtype and shape of what it returned."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple[str, str, torch.dtype, tuple[int, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        first = out[0] if isinstance(out, (tuple, list)) and out else out
        if isinstance(first, torch.Tensor):
            self.ops.append((str(func), first.device.type, first.dtype, tuple(first.shape)))
        return out

    def written(self) -> list[tuple[str, str, torch.dtype, tuple[int, ...]]]:
        """Ops that wrote values into real (not meta) memory."""
        return [op for op in self.ops if op[1] != "meta" and not op[0].endswith(ALLOCATION_ONLY)]


def bf16_checkpoint(tmp_path: Path) -> Path:
    model = build_tiny_model(seed=7).to(torch.bfloat16)
    return save_checkpoint(model, tmp_path / "bf16-ckpt")


def bulk_shapes(model: torch.nn.Module) -> set[tuple[int, ...]]:
    """Shapes of the Linear and Embedding weights: the model's bulk (over 99% of its bytes at
    full size). The few parameters a build makes by value (RMSNorm's `torch.ones`, the
    resampler's `torch.randn` latents) are made on the host, one at a time, before they go to
    meta; everything else is allocated without being written."""
    kinds = (torch.nn.Linear, torch.nn.Embedding)
    return {tuple(m.weight.shape) for m in model.modules() if isinstance(m, kinds)}


def test_bf16_load_writes_no_fp32_weight_and_initialises_none(tmp_path: Path) -> None:
    """Catches the old path: a random fp32 model built on the device, filled, then cast."""
    root = bf16_checkpoint(tmp_path)
    log = OpLog()
    with log:
        model = load_model(root, device="cpu", dtype=torch.bfloat16)
    bulk = bulk_shapes(model)
    assert len(bulk) >= 8  # the checks below see every kind of weight
    written = [op for op in log.written() if op[3] in bulk]
    assert [op for op in written if op[0].split(".")[1] in RANDOM_INIT] == []
    assert [op for op in written if op[2] == torch.float32] == []
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.language_model.model.rotary_emb.inv_freq.dtype == torch.float32


def test_light_load_equals_the_saved_model_and_stays_tied(tmp_path: Path) -> None:
    """Catches a tensor put under the wrong name, a lost tie, or inv_freq left on meta."""
    original = build_tiny_model(seed=7).to(torch.bfloat16)
    loaded = load_model(bf16_checkpoint(tmp_path), device="cpu", dtype=torch.bfloat16)
    saved = original.state_dict()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    lm = loaded.language_model
    assert lm.lm_head.weight is lm.model.embed_tokens.weight
    # inv_freq is computed at build time: fp32, the value the published code computes
    head_dim = lm.config.hidden_size // lm.config.num_attention_heads
    expected = 1.0 / (1e6 ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))
    torch.testing.assert_close(lm.model.rotary_emb.inv_freq, expected, rtol=0, atol=0)
    assert all(p.requires_grad for p in loaded.parameters())  # as a built model's are


def test_fp32_checkpoint_loads_to_bf16_by_casting_each_tensor(tiny_checkpoint: Path) -> None:
    """An fp32 file read to bf16: values are the fp32 ones rounded, tensor by tensor."""
    original = build_tiny_model(seed=7)
    loaded = load_model(tiny_checkpoint, device="cpu", dtype=torch.bfloat16)
    embed = loaded.language_model.model.embed_tokens.weight
    assert embed.dtype == torch.bfloat16
    want = original.language_model.model.embed_tokens.weight.to(torch.bfloat16)
    assert torch.equal(embed, want)


def test_parameters_on_meta_keeps_buffers_and_restores_the_hook() -> None:
    """Catches buffers lost to meta (their values are computed, never stored) and a patch that
    outlives the build (every later module would be empty)."""
    with parameters_on_meta():
        layer = torch.nn.Linear(3, 2)
        layer.register_buffer("scale", torch.full((2,), 0.5), persistent=False)
    assert layer.weight.is_meta and layer.bias.is_meta and layer.weight.requires_grad
    assert layer.scale.tolist() == [0.5, 0.5]
    assert not torch.nn.Linear(3, 2).weight.is_meta
