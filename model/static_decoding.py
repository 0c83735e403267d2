"""Decoding steps on a preallocated KV cache, with shapes that never change between steps.

Why: on an H200, transformers' decoding pass took 26-41 ms a step at batch 32 and 64 for a
3B model whose weights take about 1.5 ms to read. The time went to launching ~700 kernels
from Python, to building the attention mask anew, and to growing the cache by concatenation
(each step copied the whole cache). Here one step reads and writes only fixed buffers: the new
token's keys and values go into their slot with `index_copy_`, a boolean mask says which slots
each row may attend to, and the slot and the positions advance on the device. Nothing waits
for the host, so on CUDA the step is captured once as a CUDA graph and replayed: one launch a
step. On other devices the same step runs eagerly, which is what the CPU tests check against
transformers' own pass.

The step reuses the language model's own modules (norms, projections, MLP, rotary), so its
numerics are the model's; only the attention plumbing is this file's. It applies to the
Qwen2 layout with full attention in every layer (TinyLLaVA-Video's language model);
`supports` says whether a model qualifies, and generation falls back to transformers' pass
where it does not.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

SLOT_ROUNDING = 128
"""Cache lengths are rounded up to this, so the caption and tag questions (a few tokens and
answer lengths apart) share one decoder and one captured graph."""
KEPT_DECODERS = 2
"""Decoders kept per model (each holds a KV cache of `rows x slots`); the oldest goes first."""


def supports(lm: nn.Module) -> bool:
    """Whether `lm` has the Qwen2 layout this step implements, with full attention only."""
    config = getattr(lm, "config", None)
    inner = getattr(lm, "model", None)
    if config is None or inner is None or getattr(config, "model_type", None) != "qwen2":
        return False
    if getattr(config, "use_sliding_window", False):
        return False
    kinds = set(getattr(config, "layer_types", None) or ["full_attention"])
    return kinds == {"full_attention"} and hasattr(inner, "rotary_emb")


def slots_for(longest_prompt: int, new_tokens: int) -> int:
    """Cache slots for prompts of up to `longest_prompt` tokens and `new_tokens` more."""
    needed = longest_prompt + new_tokens
    return -(-needed // SLOT_ROUNDING) * SLOT_ROUNDING


class StaticDecoder:
    """One-token steps for `rows` sequences of up to `slots` positions on `lm`.

    `start` copies a prefilled cache in; each `step` takes every row's next token and returns
    the logits for the token after it. The logits tensor is overwritten by the next step.
    """

    def __init__(
        self,
        lm: nn.Module,
        rows: int,
        slots: int,
        use_graph: bool | None = None,
        compile_step: bool = False,
    ):
        config, device = lm.config, lm.lm_head.weight.device
        dtype = lm.model.embed_tokens.weight.dtype
        self.lm, self.rows, self.slots = lm, rows, slots
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        shape = (rows, self.kv_heads, slots, self.head_dim)
        layers = config.num_hidden_layers
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.valid = torch.zeros(rows, slots, dtype=torch.bool, device=device)
        self.slot = torch.zeros(1, dtype=torch.long, device=device)
        self.positions = torch.zeros(rows, 1, dtype=torch.long, device=device)
        self.tokens = torch.zeros(rows, dtype=torch.long, device=device)
        self.used = 0
        """Slots filled so far, known on the host: a step past `slots` is refused."""
        self.graph: Any = None
        self.logits: torch.Tensor | None = None
        self._step_fn = self._forward
        if compile_step:  # fuses the norms, rotary and residual adds of each layer
            self._step_fn = torch.compile(self._forward, fullgraph=True, dynamic=False)
        if use_graph if use_graph is not None else device.type == "cuda":
            self._capture()

    def start(self, cache: Any, positions: torch.Tensor, mask: torch.Tensor | None) -> None:
        """Take a prefilled cache (`DynamicCache`, `rows x L`): `positions` `[rows]` is each
        row's last position, `mask` `[rows, L]` its real tokens (None: all are real)."""
        length = cache.get_seq_length()
        if length >= self.slots:
            raise ValueError(f"a prefill of {length} positions leaves no slot of {self.slots}")
        for layer, keys, values in zip(cache.layers, self.keys, self.values, strict=True):
            keys[:, :, :length].copy_(layer.keys)
            values[:, :, :length].copy_(layer.values)
        self.valid.zero_()
        if mask is None:
            self.valid[:, :length] = True
        else:
            self.valid[:, :length].copy_(mask.bool())
        self.slot.fill_(length)
        self.positions.copy_(positions.reshape(self.rows, 1) + 1)
        self.used = length

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits `[rows, vocab]` after each row's `tokens` `[rows]`."""
        if self.used >= self.slots:
            raise ValueError(f"all {self.slots} cache slots are used")
        self.tokens.copy_(tokens)
        self.used += 1
        if self.graph is None:
            return self._step_fn()
        self.graph.replay()
        return self.logits  # type: ignore[return-value]

    def _capture(self) -> None:
        """Record one step as a CUDA graph. The warm-up steps write garbage into slots that
        `start` resets; capture itself runs nothing."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                self._step_fn()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self._step_fn()

    def _forward(self) -> torch.Tensor:
        inner = self.lm.model
        hidden = inner.embed_tokens(self.tokens)[:, None]  # [B, 1, D]
        self.valid.index_fill_(1, self.slot, True)
        attend = self.valid[:, None, None, :]  # [B, 1, 1, S], broadcast over heads
        cos, sin = inner.rotary_emb(hidden, self.positions)  # [B, 1, hd]
        cos, sin = cos[:, None], sin[:, None]  # [B, 1, 1, hd]
        for layer, keys, values in zip(inner.layers, self.keys, self.values, strict=True):
            hidden = hidden + self._attend(layer, hidden, cos, sin, keys, values, attend)
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        logits = self.lm.lm_head(inner.norm(hidden)[:, 0])  # [B, V]
        self.slot.add_(1)
        self.positions.add_(1)
        return logits

    def _attend(self, layer, hidden, cos, sin, keys, values, attend) -> torch.Tensor:
        """One layer's attention for the new token. The query heads that share a key-value
        head are laid out as that head's queries (`[B, KV, group, hd]`), so grouped-query
        attention reads each cached key once instead of once per query head."""
        attn, rows = layer.self_attn, self.rows
        normed = layer.input_layernorm(hidden)
        query = attn.q_proj(normed).view(rows, self.heads, 1, self.head_dim)
        key = attn.k_proj(normed).view(rows, self.kv_heads, 1, self.head_dim)
        value = attn.v_proj(normed).view(rows, self.kv_heads, 1, self.head_dim)
        query, key = _rotate(query, cos, sin), _rotate(key, cos, sin)
        keys.index_copy_(2, self.slot, key)
        values.index_copy_(2, self.slot, value)
        group = self.heads // self.kv_heads
        query = query.view(rows, self.kv_heads, group, self.head_dim)
        out = F.scaled_dot_product_attention(query, keys, values, attn_mask=attend)
        return attn.o_proj(out.reshape(rows, 1, self.heads * self.head_dim))


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding, as the model applies it (rotate-half layout)."""
    half = x.shape[-1] // 2
    turned = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + turned * sin


def decoder_for(model: Any, rows: int, slots: int, compile_step: bool = False) -> StaticDecoder:
    """The model's decoder for `rows x slots`, built (and on CUDA captured) on first use and
    kept for the batches after it: a run's batches share one size, so capture is paid once."""
    kept: dict[tuple[int, int, bool], StaticDecoder] = model.__dict__.setdefault("_decoders", {})
    key = (rows, slots, compile_step)
    if key not in kept:
        while len(kept) >= KEPT_DECODERS:
            kept.pop(next(iter(kept)))
        kept[key] = StaticDecoder(model.language_model, rows, slots, compile_step=compile_step)
    return kept[key]
