"""Reading and writing checkpoints in the published TinyLLaVA-Video format, safely.

On disk: `config.json` (model_type "tinyllava"), weights as safetensors (`model.safetensors` or
shards with `model.safetensors.index.json`), the tokenizer files beside them. Parameter names are
the published ones; the renames below are the whole difference from this package's modules.

Safety: nothing from a checkpoint is ever executed. No `trust_remote_code`, no dynamic modules,
no path named inside the config is opened, and pytorch `.bin` weights only go through
`torch.load(weights_only=True)`, which refuses pickled code.

torch (and safetensors' torch side) is imported by the functions that read or write tensors,
not by this module: the driver names a checkpoint's weight files and hashes them
(`weight_files`, `weights_digest`: the model's identity in fingerprints), and the command line
recognises a `CheckpointError`, without importing torch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .configuration import ConfigError, TinyLlavaVideoConfig, parse_config
from .digest import weights_digest
from .weights import CheckpointError, iter_tensors

if TYPE_CHECKING:
    import torch
    from torch import nn

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
BIN_FILE = "pytorch_model.bin"
BIN_INDEX = "pytorch_model.bin.index.json"
TOY_CHECKPOINT_DIR = Path(__file__).resolve().parent / "toy" / "checkpoint"
"""The toy checkpoint shipped inside the package (the embedded default model, `source: toy`)."""

# Published name prefix -> this package's module prefix. SigLIP weights come nested under
# `vision_model.` (transformers 4.x) or flat (5.x); both map to the same canonical name.
PUBLISHED_TO_CANONICAL: tuple[tuple[str, str], ...] = (
    (r"^vision_tower\._vision_tower\.(vision_model\.)?", "vision_tower.siglip."),
    (r"^connector\._connector\.", "connector."),
    (r"^language_model\.", "language_model."),
)
CANONICAL_TO_PUBLISHED: tuple[tuple[str, str], ...] = (
    (r"^vision_tower\.siglip\.", "vision_tower._vision_tower.vision_model."),
    (r"^connector\.", "connector._connector."),
)


def canonical_name(name: str) -> str:
    """Published or module parameter name -> the one spelling both map to."""
    name = name.replace("vision_tower.siglip.vision_model.", "vision_tower.siglip.")
    for pattern, repl in PUBLISHED_TO_CANONICAL:
        name, hits = re.subn(pattern, repl, name)
        if hits:
            return name
    return name


def published_name(module_name: str) -> str:
    """This package's parameter name -> the name published checkpoints use."""
    name = canonical_name(module_name)
    for pattern, repl in CANONICAL_TO_PUBLISHED:
        name, hits = re.subn(pattern, repl, name)
        if hits:
            return name
    return name


def read_config(checkpoint_dir: Path) -> TinyLlavaVideoConfig:
    path = Path(checkpoint_dir) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{checkpoint_dir}: no {CONFIG_FILE}")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from err
    return parse_config(raw)


def weight_files(checkpoint_dir: Path) -> list[Path]:
    """The weight files of a checkpoint, safetensors preferred over pytorch `.bin`."""
    root = Path(checkpoint_dir)
    for single, index in ((SAFETENSORS_FILE, SAFETENSORS_INDEX), (BIN_FILE, BIN_INDEX)):
        if (root / single).is_file():
            return [root / single]
        if (root / index).is_file():
            files = [_inside(root, shard) for shard in _shard_names(root / index)]
            missing = [f.name for f in files if not f.is_file()]
            if missing:
                raise CheckpointError(f"{root}: shards named in {index} are missing: {missing}")
            return files
    raise CheckpointError(f"{root}: no weights ({SAFETENSORS_FILE}, {BIN_FILE} or an index)")


def _shard_names(index: Path) -> list[str]:
    """The shard file names an index's `weight_map` points at; a malformed index is named."""
    try:
        raw = json.loads(index.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{index}: not valid JSON ({err})") from err
    weight_map = raw.get("weight_map") if isinstance(raw, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{index}: needs a non-empty 'weight_map' object")
    names = set(weight_map.values())
    if not all(isinstance(name, str) and name for name in names):
        raise CheckpointError(f"{index}: 'weight_map' values must be shard file names")
    return sorted(names)


def _inside(root: Path, name: str) -> Path:
    """A shard path from an index file, refused if it would leave the checkpoint directory."""
    path = (root / name).resolve()
    if root.resolve() not in path.parents:
        raise CheckpointError(f"{root}: shard name {name!r} points outside the checkpoint")
    return path


def read_weights(files: Iterable[Path]) -> dict[str, torch.Tensor]:
    """Every tensor of the weight files, on the host, as stored (tests and tools; `load_model`
    streams them with `weights.iter_tensors` instead)."""
    return dict(iter_tensors(files))


def match_weights(
    model: nn.Module, shapes: dict[str, tuple[int, ...]], tied: bool
) -> dict[str, str]:
    """Checkpoint tensor name -> `model`'s state-dict key, from names and shapes alone (the
    model may be on the meta device); every missing, extra or misshapen tensor is named."""
    state = model.state_dict(keep_vars=True)
    targets = {canonical_name(k): k for k in state}
    buffers = {canonical_name(k) for k, _ in model.named_buffers()}
    plan: dict[str, str] = {}
    unexpected = []
    for name, shape in shapes.items():
        key = targets.get(canonical_name(name))
        if key is None:
            if canonical_name(name) not in buffers and not name.endswith(".position_ids"):
                unexpected.append(name)
            continue
        if tuple(shape) != tuple(state[key].shape):
            raise CheckpointError(
                f"tensor {name}: shape {tuple(shape)} in the checkpoint, "
                f"{tuple(state[key].shape)} expected by its config"
            )
        plan[name] = key
    optional = {"language_model.lm_head.weight"} if tied else set()
    persistent = set(state) - {targets[b] for b in buffers if b in targets}
    filled = set(plan.values())
    missing = sorted(published_name(k) for k in persistent if k not in filled | optional)
    if missing or unexpected:
        raise CheckpointError(
            "checkpoint does not match its config: "
            + (f"missing tensors {_short(missing)}" if missing else "")
            + ("; " if missing and unexpected else "")
            + (f"unexpected tensors {_short(sorted(unexpected))}" if unexpected else "")
        )
    return plan


def load_weights_into(model: nn.Module, state: dict[str, torch.Tensor], tied: bool) -> None:
    """Copy published tensors into `model` (real, not meta); errors as `match_weights`."""
    plan = match_weights(model, {k: tuple(v.shape) for k, v in state.items()}, tied)
    model.load_state_dict({key: state[name] for name, key in plan.items()}, strict=False)
    if tied:
        model.language_model.tie_weights()


def _short(names: list[str], limit: int = 12) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def save_checkpoint(model: nn.Module, out_dir: Path) -> Path:
    """Write `model` (a `TinyLlavaVideo`) as a published-format checkpoint directory."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config: TinyLlavaVideoConfig = model.config
    tied = bool(config.text_config.tie_word_embeddings)
    buffers = {k for k, _ in model.named_buffers()}
    state = {}
    for name, tensor in model.state_dict().items():
        if name in buffers or (tied and name == "language_model.lm_head.weight"):
            continue
        state[published_name(name)] = tensor.detach().contiguous().cpu()
    save_file(state, str(out / SAFETENSORS_FILE), metadata={"format": "pt"})
    raw = config.to_dict()
    if model.tokenizer is not None:
        model.tokenizer.save_pretrained(str(out))
        _portable_tokenizer_class(out / "tokenizer_config.json")
        raw["pad_token"] = model.tokenizer.pad_token
        raw["pad_token_id"] = model.tokenizer.pad_token_id
    (out / CONFIG_FILE).write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
    (out / "preprocessor_config.json").write_text(
        json.dumps(model.processor.to_json_dict(), indent=2) + "\n"
    )
    return out


def _portable_tokenizer_class(path: Path) -> None:
    """transformers 5 names its generic fast tokenizer `TokenizersBackend`, which 4.x (the
    version the published code runs on) does not know; `PreTrainedTokenizerFast` is the same
    tokenizer under the name every version maps."""
    settings = json.loads(path.read_text())
    if settings.get("tokenizer_class") == "TokenizersBackend":
        settings["tokenizer_class"] = "PreTrainedTokenizerFast"
        path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")


__all__ = [
    "CheckpointError",
    "ConfigError",
    "load_weights_into",
    "match_weights",
    "read_config",
    "read_weights",
    "save_checkpoint",
    "weight_files",
    "weights_digest",
]
