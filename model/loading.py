"""`load_model`: a published-format checkpoint (local or `s3://`) -> a ready `TinyLlavaVideo`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from .checkpoint import CheckpointError, match_weights, read_config, weight_files, weights_digest
from .modeling import TinyLlavaVideo
from .processing import FrameProcessor
from .remote import fetch_checkpoint
from .weights import iter_tensors, tensor_shapes


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the GPU has it, fp16 on older GPUs, fp32 on CPU."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_tokenizer(checkpoint_dir: Path):
    """The checkpoint's tokenizer through a built-in class only; custom code is refused.

    The class comes from `tokenizer_config.json`'s `tokenizer_class`, looked up among
    transformers' own tokenizers (never `auto_map`), so nothing shipped with the checkpoint runs.
    """
    from transformers import PreTrainedTokenizerFast
    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    root = Path(checkpoint_dir)
    config_path = root / "tokenizer_config.json"
    settings = _read_json_object(config_path) if config_path.is_file() else {}
    if settings.get("auto_map"):
        raise CheckpointError(
            f"{config_path}: 'auto_map' asks to run tokenizer code shipped with the checkpoint; "
            "clipnote never executes checkpoint code"
        )
    name = settings.get("tokenizer_class")
    tokenizer_cls = tokenizer_class_from_name(name) if name else PreTrainedTokenizerFast
    if tokenizer_cls is None:
        raise CheckpointError(f"{config_path}: tokenizer_class {name!r} is not built in")
    if not (root / "tokenizer.json").is_file() and not (root / "vocab.json").is_file():
        raise CheckpointError(f"{root}: no tokenizer files (tokenizer.json or vocab.json)")
    tokenizer = tokenizer_cls.from_pretrained(str(root))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = "<|endoftext|>"
    return tokenizer


def _read_json_object(path: Path) -> dict:
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: must hold a JSON object")
    return raw


def resolve_source(
    source: str | Path, *, endpoint_url: str | None = None, cache_dir: Path | None = None
) -> Path:
    """A local checkpoint directory for `source` (fetching `s3://` prefixes once per node)."""
    text = str(source)
    if text.startswith("s3://"):
        return fetch_checkpoint(text, endpoint_url=endpoint_url, cache_dir=cache_dir)
    path = Path(text).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"{source}: not a checkpoint directory")
    return path


def load_model(
    source: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    endpoint_url: str | None = None,
    cache_dir: Path | None = None,
) -> TinyLlavaVideo:
    """Build the model from a checkpoint directory or `s3://` prefix, in eval mode.

    Light: the parameters are built on the meta device (no memory, no random init), then each
    published tensor is read from its file straight to `device` in `dtype`, one at a time
    (`weights.iter_tensors`), and becomes the parameter. Peak host memory is the model where it
    lives on the host, plus one tensor. The buffers computed at build time stay as computed
    (`place_buffers`). `model.model_id` names the checkpoint and a short hash of its weights,
    for fingerprints (`digest.weights_digest`, cached while the files are unchanged).
    """
    root = resolve_source(source, endpoint_url=endpoint_url, cache_dir=cache_dir)
    config = read_config(root)
    files = weight_files(root)
    tokenizer = load_tokenizer(root)
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype or default_dtype(device)
    with parameters_on_meta():
        model = TinyLlavaVideo(config, tokenizer)
    tied = bool(config.text_config.tie_word_embeddings)
    plan = match_weights(model, tensor_shapes(files), tied=tied)
    for name, tensor in iter_tensors(files, set(plan), device=device, dtype=dtype):
        _assign(model, plan[name], tensor)
    if tied:
        model.language_model.tie_weights()
    empty = [n for n, p in model.named_parameters(remove_duplicate=False) if p.is_meta]
    if empty:
        raise CheckpointError(f"{root}: parameters left unfilled: {', '.join(empty)}")
    place_buffers(model, device, dtype)
    model.processor = FrameProcessor.from_checkpoint(root, default_size=config.image_size)
    name = str(source).rstrip("/").rsplit("/", 1)[-1] or "checkpoint"
    model.model_id = f"{name}@{weights_digest(files)[:12]}"
    return model.eval()


@contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Modules built inside get their parameters on the meta device; buffers stay real.

    A parameter is moved to meta as it is registered, so the initialisers that follow
    (`reset_parameters`, transformers' `_init_weights`) write nothing, while buffers computed
    at build time (the rotary `inv_freq`, in fp32 on the host) keep their values. The same
    idea as accelerate's `init_empty_weights(include_buffers=False)`. It patches
    `nn.Module.register_parameter` for the duration: build nothing else in another thread.
    """
    register = nn.Module.register_parameter

    def on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        register(module, name, param)
        if param is not None and not param.is_meta:
            meta = param.to("meta")
            module._parameters[name] = nn.Parameter(meta, requires_grad=param.requires_grad)

    nn.Module.register_parameter = on_meta  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = register  # type: ignore[method-assign]


def _assign(model: nn.Module, key: str, tensor: torch.Tensor) -> None:
    """`tensor` becomes the parameter (or persistent buffer) `key` of `model`, as it is."""
    owner, _, attr = key.rpartition(".")
    module = model.get_submodule(owner)
    old = module._parameters.get(attr)
    if old is not None:
        module._parameters[attr] = nn.Parameter(tensor, requires_grad=old.requires_grad)
    else:
        module._buffers[attr] = tensor


def place_buffers(model: nn.Module, device: torch.device, dtype: torch.dtype) -> None:
    """Every buffer on `device`; floating ones in `dtype`, but for those computed at build
    time (non-persistent), which keep the dtype they were built in (see
    `cast_keeping_computed_buffers`)."""
    for module in model.modules():
        for name, buffer in module._buffers.items():
            if buffer is None:
                continue
            kept = name in module._non_persistent_buffers_set or not buffer.is_floating_point()
            module._buffers[name] = buffer.to(device=device, dtype=None if kept else dtype)


def cast_keeping_computed_buffers(model: TinyLlavaVideo, dtype: torch.dtype) -> TinyLlavaVideo:
    """`model.to(dtype)`, except the floating buffers computed at build time (non-persistent).

    The published code builds those in fp32 and never stores them (the language model's rotary
    `inv_freq` and `original_inv_freq`): transformers' `from_pretrained` never casts them, so
    neither may we. In bf16 `inv_freq` is off by up to ~0.4%, about 0.7 rad of rotary phase at
    position 640, and every generated token sits past the 512 video tokens.
    """
    kept = {
        (module, name): buffer
        for module in model.modules()
        for name, buffer in module._buffers.items()
        if buffer is not None
        and name in module._non_persistent_buffers_set
        and buffer.is_floating_point()
    }
    model.to(dtype=dtype)
    for (module, name), buffer in kept.items():
        module._buffers[name] = buffer
    return model
