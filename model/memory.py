"""How much accelerator memory annotating a batch takes, measured by running the real forward.

Sizing a batch from a formula goes wrong quietly: the vision tower runs in slices of frames, the
resampler has its own activations, a KV cache grows by one position a step and is copied as it
grows, the shared prefix's cache is cut back and reused, and weights stay resident at the dtype
they were loaded in, not at the size of the file they came from. So nothing here is a formula:
the model is built on the `meta` device (shapes and dtypes, no data, no memory, seconds to
build at full size), the annotator's own calls run on it, and `LiveBytes` counts the bytes of
every tensor the forward creates while it is alive. The peak of that count is what a batch
needs on top of the weights.

Meta tensors hold no values, so the few places the annotation path reads a value on the host
get fixed answers, each the costlier branch there: every boolean read is False (generation
never sees every row stopped, so it runs to `max_new_tokens`; attention masks are never
skipped, so they are built), numbers read as 0, and token ids copied to the host spell a list
of one-word items as long as `max_new_tokens` allows (" a, a, a, ..."): the most places a
taxonomy's tags are scored at, so the most rows its scoring passes hold (a tokenizer with
single tokens for a word and its comma could write a longer list; the published one splits
them). Other copies to the host are zeros.

Attention (`scaled_dot_product_attention`) counts its output only, as the fused kernels a GPU
runs allocate (flash and memory-efficient attention never hold the `[q, kv]` score matrix; the
meta device's own fallback would).

What this does not see: the CUDA context, the caching allocator's rounding and fragmentation,
and the library workspaces; the caller keeps a margin of the GPU's memory for them.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .configuration import TinyLlavaVideoConfig
from .generation import GenerationSettings
from .loading import cast_keeping_computed_buffers
from .modeling import TinyLlavaVideo
from .processing import FrameProcessor
from .prompts import CAPTION_PROMPT, TAG_PROMPT, TAXONOMY_QUESTION

aten = torch.ops.aten
_HOST_READS = {aten._local_scalar_dense.default, aten.is_nonzero.default, aten.item.default}
_COPIES = {aten.to, aten._to_copy}


class LiveBytes(TorchDispatchMode):
    """Counts the bytes of tensors created on `device` while the mode is on: `live` now, `peak`
    the most at once. A storage is counted once however many views share it, and leaves the
    count when Python frees it, as a GPU's allocator gets it back. Tensors made before the mode
    (the weights) are not counted. On `meta`, host reads get the answers the module docstring
    gives."""

    def __init__(self, device: str = "meta", host_ids: tuple[int, ...] = (0,)) -> None:
        super().__init__()
        self.device = device
        self.host_ids = host_ids
        """What integer tensors copied from meta to the host hold, repeated along their last
        dimension (the token ids of generated answers)."""
        self.live = 0
        self.peak = 0
        self._sizes: dict[int, int] = {}
        self._specs: dict[tuple, tuple] = {}

    def _count(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = id(storage)  # one Python object per storage while it lives (PyObject preserved)
        if key in self._sizes:
            return
        self._sizes[key] = storage.nbytes()
        self.live += storage.nbytes()
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.live -= self._sizes.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        first = args[0] if args else None
        if isinstance(first, torch.Tensor) and first.is_meta:
            answered = _host_answer(func, first, args, kwargs, self.host_ids)
            if answered is not None:
                return answered
            if func is aten.scaled_dot_product_attention.default:
                out = _attention_output(first, args[2])
                self._count(out)
                return out
        out = self._run(func, args, kwargs)
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor) and leaf.device.type == self.device:
                self._count(leaf)
        return out

    def _run(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """`func`'s result; on meta, a fresh output's shape, strides and dtype are remembered per
        input signature, so the 35 layers after the first cost a lookup, not a meta kernel
        (most of the trace's time). Views and in-place ops always run: they alias storage."""
        key = _signature(func, args, kwargs) if _allocates(func) else None
        if key is not None and key in self._specs:
            return _from_spec(self._specs[key])
        out = func(*args, **kwargs)
        if key is not None:
            spec = _spec(out)
            if spec is not None:
                self._specs[key] = spec
        return out


def _attention_output(query: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """What a fused attention kernel returns: `[B, H, q, d]` laid out as `[B, q, H, d]` (its
    own layout), so the model's `transpose(1, 2).contiguous()` after it copies nothing, as on
    a GPU (and on a CPU)."""
    *lead, heads, length, _ = query.shape
    if not lead:
        return query.new_empty((heads, length, value.shape[-1]))
    return query.new_empty((*lead, length, heads, value.shape[-1])).transpose(-3, -2)


class _Uncacheable(Exception):
    pass


_PLAIN = (int, float, bool, str, type(None), torch.dtype, torch.device, torch.layout)
_PLAIN += (torch.memory_format,)


def _allocates(func: Any) -> bool:
    """An op whose outputs are new tensors: no output aliases an input, nothing is mutated."""
    schema = func._schema
    return not schema.is_mutable and all(r.alias_info is None for r in schema.returns)


def _signature(func: Any, args: tuple, kwargs: dict) -> tuple | None:
    """Everything an op's output metadata can depend on, or None (a value that is not plain
    data, or a tensor off the meta device)."""

    def part(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            if not value.is_meta:
                raise _Uncacheable
            return (tuple(value.shape), value.stride(), value.dtype)
        if isinstance(value, (list, tuple)):
            return (type(value).__name__, *(part(v) for v in value))
        if isinstance(value, _PLAIN):
            return (type(value).__name__, value)  # 1, 1.0 and True are one dict key otherwise
        raise _Uncacheable

    try:
        return (func, part(args), part(sorted(kwargs.items())))
    except _Uncacheable:
        return None


def _spec(out: Any) -> tuple | None:
    leaves = out if isinstance(out, (tuple, list)) else [out]
    if not leaves or not all(isinstance(t, torch.Tensor) and t.is_meta for t in leaves):
        return None
    specs = tuple((tuple(t.shape), t.stride(), t.dtype) for t in leaves)
    return (isinstance(out, (tuple, list)), specs)


def _from_spec(spec: tuple) -> Any:
    many, specs = spec
    made = [torch.empty_strided(s, st, dtype=d, device="meta") for s, st, d in specs]
    return tuple(made) if many else made[0]


def _host_answer(
    func: Any, first: torch.Tensor, args: tuple, kwargs: dict, host_ids: tuple[int, ...]
) -> Any:
    """The fixed answer to a host read of a meta tensor, or None for any other op."""
    if func in _HOST_READS:
        if first.dtype == torch.bool:
            return False
        return 0.0 if first.is_floating_point() else 0
    if func.overloadpacket not in _COPIES:
        return None
    device = kwargs.get("device") or next(
        (a for a in args[1:] if isinstance(a, (torch.device, str))), None
    )
    if device is None or torch.device(device).type == "meta":
        return None
    dtype = kwargs.get("dtype") or next(
        (a for a in args[1:] if isinstance(a, torch.dtype)), first.dtype
    )
    if dtype.is_floating_point or dtype == torch.bool or first.ndim == 0:
        return torch.zeros(first.shape, dtype=dtype, device=device)
    ids = torch.tensor(host_ids, dtype=dtype, device=device)
    return ids.repeat(-(-first.shape[-1] // len(host_ids)))[: first.shape[-1]].expand(first.shape)


@dataclass(frozen=True)
class Questions:
    """What the annotator asks of every clip (`pipeline/annotate/annotator.py`), as plain data:
    the caption, then a tag list (`generate`), taxonomy scores (`taxonomy`) or nothing."""

    caption: str = CAPTION_PROMPT
    caption_tokens: int = 64
    tag_mode: str = "generate"
    tags: str = TAG_PROMPT
    tag_tokens: int = 32
    taxonomy: tuple[str, ...] = ()
    taxonomy_method: str = "listing"
    taxonomy_question: str = TAXONOMY_QUESTION
    stop_ids: tuple[int, ...] | None = None
    """None: the tokenizer's stops, as the annotator. An id outside the vocabulary makes a
    real model's answers as long as the meta device's (to check one against the other)."""


def annotate_batch(
    model: TinyLlavaVideo, clips: list[np.ndarray] | list[torch.Tensor], asked: Questions
) -> None:
    """The calls the annotator makes for one batch (`Annotator._annotate_clips`), in its order:
    the clips' visual tokens once, the caption and tag questions sharing their prefix's prefill,
    or taxonomy scores. A test runs both on the same model and clips and compares their peaks,
    so the two cannot drift apart unseen."""
    video = model.encode_frames(clips)
    prefix = None
    if asked.tag_mode == "generate":
        prefix = model.share_prefix(video, [asked.caption, asked.tags])
    caption = GenerationSettings(asked.caption_tokens, stop_ids=asked.stop_ids)
    model.caption(video, asked.caption, caption, prefix)
    if asked.tag_mode == "generate":
        tags = GenerationSettings(asked.tag_tokens, stop_ids=asked.stop_ids)
        model.generate_tags(video, asked.tags, tags, prefix)
    elif asked.tag_mode == "taxonomy" and asked.taxonomy:
        listing = asked.taxonomy_method == "listing"
        question = asked.tags if listing else asked.taxonomy_question
        model.score_tags(
            video, list(asked.taxonomy), question, method=asked.taxonomy_method,  # type: ignore[arg-type]
            max_new_tokens=asked.tag_tokens,
        )  # fmt: skip


def meta_model(
    config: TinyLlavaVideoConfig,
    tokenizer: Any,
    dtype: torch.dtype,
    processor: FrameProcessor | None = None,
) -> TinyLlavaVideo:
    """The model as `load_model` leaves it (`dtype`, computed buffers kept in fp32), on the meta
    device: every shape and dtype, no weights read, no memory taken."""
    with torch.device("meta"):
        model = TinyLlavaVideo(config, tokenizer)
    if processor is not None:
        model.processor = processor
    return cast_keeping_computed_buffers(model, dtype).eval()


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes the loaded model keeps resident: every parameter and buffer at its own dtype, each
    storage once (tied embeddings share one)."""
    sizes = {
        id(t.untyped_storage()): t.untyped_storage().nbytes()
        for t in [*model.parameters(), *model.buffers()]
    }
    return sum(sizes.values())


def peak_bytes(model: TinyLlavaVideo, batch: int, frames: int, asked: Questions) -> int:
    """Most bytes alive at once, beyond the weights, while `model` annotates `batch` clips of
    `frames` frames each at the model's input size (as decode delivers them), on `model`'s own
    device: the meta device for a measurement at any size, a real one to check it."""
    size = model.processor.size
    device = model.device
    clips = [
        torch.zeros(frames, size, size, 3, dtype=torch.uint8, device=device) for _ in range(batch)
    ]
    with LiveBytes(device.type, listing_ids(model.tokenizer, asked.taxonomy)) as counted:
        annotate_batch(model, clips, asked)
    return counted.peak


def listing_ids(tokenizer: Any, taxonomy: tuple[str, ...] = ()) -> tuple[int, ...]:
    """Token ids of one item of a tag list and its comma, " a," (or another letter, one that is
    no tag of the taxonomy, since a tag the model wrote is taken out of its list's places)."""
    tags = {tag.strip().lower() for tag in taxonomy}
    word = next(w for w in "abcdefghijklmnopqrstuvwxyz" if w not in tags)
    return tuple(tokenizer(f" {word},", add_special_tokens=False).input_ids)
