"""Weight files read one tensor at a time, each straight into its target device and dtype.

A safetensors file is an 8-byte little-endian header length, a JSON header (name -> dtype,
shape, byte range) and the tensors' bytes. Each tensor is read with plain `readinto` into
memory of its own, then cast or moved: the host never holds more than the model (when it lives
on the host) plus one tensor. safetensors' own `safe_open` maps the whole file instead, and the
pages it reads stay in the process's RSS until the file is closed, so a host-resident model
would peak at twice the checkpoint. Nothing stays mapped either: a weights file rewritten while
the model is loaded cannot fault the model's memory.

pytorch `.bin` files only go through `torch.load(weights_only=True)`, whole, as before: they are
the legacy format and never light.

torch is imported by the functions that make tensors, not by this module.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

MAX_HEADER_BYTES = 100 << 20
"""safetensors' own limit on the JSON header; a larger one is a broken or hostile file."""

SAFETENSORS_DTYPES = {
    "F64": ("float64", 8), "F32": ("float32", 4), "F16": ("float16", 2),
    "BF16": ("bfloat16", 2), "F8_E4M3": ("float8_e4m3fn", 1), "F8_E5M2": ("float8_e5m2", 1),
    "I64": ("int64", 8), "I32": ("int32", 4), "I16": ("int16", 2), "I8": ("int8", 1),
    "U8": ("uint8", 1), "BOOL": ("bool", 1),
}  # fmt: skip
"""safetensors dtype code -> (torch dtype name, bytes per element)."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be loaded as it is; the message names the files or tensors."""


@dataclass(frozen=True)
class StoredTensor:
    """Where one tensor of a safetensors file lies: absolute byte range, dtype, shape."""

    path: Path
    name: str
    dtype: str  # a torch dtype name, e.g. "float32"
    shape: tuple[int, ...]
    start: int
    end: int


def read_header(path: Path) -> list[StoredTensor]:
    """The tensors a safetensors file holds, in file order, with their byte ranges checked."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: not a safetensors file (shorter than its header)")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(f"{path}: not a safetensors file (header of {length} bytes)")
        try:
            header = json.loads(fh.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CheckpointError(f"{path}: safetensors header is not valid JSON ({err})") from err
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: safetensors header must be a JSON object")
    base = 8 + length
    tensors = [_entry(path, name, spec, base, size) for name, spec in header.items()
               if name != "__metadata__"]  # fmt: skip
    return sorted(tensors, key=lambda t: t.start)


def _entry(path: Path, name: str, spec: object, base: int, size: int) -> StoredTensor:
    try:
        dtype, itemsize = SAFETENSORS_DTYPES[spec["dtype"]]  # type: ignore[index]
        shape = tuple(int(d) for d in spec["shape"])  # type: ignore[index]
        begin, end = (int(x) for x in spec["data_offsets"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: tensor {name}: malformed header entry {spec!r}") from err
    count = 1
    for dim in shape:
        count *= dim
    if min(shape, default=0) < 0 or end - begin != count * itemsize or begin < 0:
        raise CheckpointError(f"{path}: tensor {name}: byte range does not fit shape {shape}")
    if base + end > size:
        raise CheckpointError(f"{path}: tensor {name}: runs past the end of the file")
    return StoredTensor(path, name, dtype, shape, base + begin, base + end)


def tensor_shapes(files: Iterable[Path]) -> dict[str, tuple[int, ...]]:
    """Every tensor's name and shape, from the headers only (`.bin` files are loaded)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for path in files:
        if path.suffix == ".safetensors":
            shapes.update((t.name, t.shape) for t in read_header(path))
        else:
            shapes.update((k, tuple(v.shape)) for k, v in read_bin(path).items())
    return shapes


def iter_tensors(
    files: Iterable[Path],
    wanted: set[str] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) for each tensor in `wanted` (all if None), one at a time, on `device`;
    floating tensors cast to `dtype` (kept as stored if None)."""
    for path in files:
        if path.suffix == ".safetensors":
            with open(path, "rb", buffering=0) as fh:
                for stored in read_header(path):
                    if wanted is None or stored.name in wanted:
                        yield stored.name, _placed(_read(fh, stored), device, dtype)
        else:
            state = read_bin(path)
            for name in list(state):
                tensor = state.pop(name)
                if wanted is None or name in wanted:
                    yield name, _placed(tensor, device, dtype)


def _read(fh, stored: StoredTensor) -> torch.Tensor:
    """The tensor's bytes, read into fresh host memory (no mapping of the file)."""
    import torch

    raw = torch.empty(stored.end - stored.start, dtype=torch.uint8)
    view = memoryview(raw.numpy())
    fh.seek(stored.start)
    done = 0
    while done < len(view):
        got = fh.readinto(view[done:])
        if not got:
            raise CheckpointError(f"{stored.path}: tensor {stored.name}: file ends early")
        done += got
    return raw.view(getattr(torch, stored.dtype)).reshape(stored.shape)


def _placed(tensor: torch.Tensor, device, dtype) -> torch.Tensor:
    """`tensor` on `device`, floating ones in `dtype`; no copy when it is already there."""
    if dtype is not None and tensor.is_floating_point():
        return tensor.to(device=device, dtype=dtype)
    return tensor.to(device=device)


def read_bin(path: Path) -> dict[str, torch.Tensor]:
    """A pytorch `.bin` weights file, through `torch.load(weights_only=True)` only."""
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{path}: refused; pytorch weights are read with weights_only=True and this file "
            f"holds more than tensors ({type(err).__name__}: {str(err).splitlines()[0]})"
        ) from err
    if not isinstance(loaded, dict) or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        raise CheckpointError(f"{path}: expected a dict of tensors")
    return loaded


__all__ = ["CheckpointError", "StoredTensor", "iter_tensors", "tensor_shapes"]
