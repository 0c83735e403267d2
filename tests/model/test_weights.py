"""Weight files read tensor by tensor: safetensors headers parsed and checked by hand, bytes
read into memory of their own, floating tensors cast, `.bin` only through weights_only."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from model.checkpoint import CheckpointError
from model.weights import iter_tensors, read_header, tensor_shapes


def raw_file(path: Path, header: dict, data: bytes) -> Path:
    body = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + data)
    return path


def test_header_gives_file_order_and_absolute_byte_ranges(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_file({"b": torch.zeros(2, 3), "a": torch.ones(4, dtype=torch.int64)}, str(path))
    stored = read_header(path)
    header_len = struct.unpack("<Q", path.read_bytes()[:8])[0]
    assert [t.name for t in stored] == ["a", "b"]  # by offset: safetensors writes a first
    assert [(t.dtype, t.shape) for t in stored] == [("int64", (4,)), ("float32", (2, 3))]
    assert stored[0].start == 8 + header_len and stored[0].end - stored[0].start == 32
    assert stored[1].end == path.stat().st_size
    assert tensor_shapes([path]) == {"a": (4,), "b": (2, 3)}


def test_tensors_come_as_written_and_floats_are_cast(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    written = {
        "x": torch.tensor([[1.5, -2.25], [3.0, 0.1]]),
        "i": torch.tensor([7, -8], dtype=torch.int32),
        "h": torch.tensor([0.5], dtype=torch.bfloat16),
        "s": torch.tensor(4.0),  # 0-d
    }
    save_file(written, str(path))
    as_stored = dict(iter_tensors([path]))
    for name, tensor in written.items():
        assert torch.equal(as_stored[name], tensor) and as_stored[name].dtype == tensor.dtype
    cast = dict(iter_tensors([path], wanted={"x", "i"}, dtype=torch.bfloat16))
    assert sorted(cast) == ["i", "x"]
    assert cast["x"].dtype == torch.bfloat16
    assert cast["x"].tolist() == [[1.5, -2.25], [3.0, 0.10009765625]]  # 0.1 to 8 bits
    assert cast["i"].dtype == torch.int32  # integers are never cast


def test_read_tensor_owns_its_memory(tmp_path: Path) -> None:
    """Catches tensors that alias a mapping of the file: rewriting it must not change them."""
    path = tmp_path / "w.safetensors"
    save_file({"x": torch.arange(6.0)}, str(path))
    [(_, tensor)] = list(iter_tensors([path]))
    save_file({"x": torch.zeros(6)}, str(path))
    assert tensor.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize(
    "header,data,message",
    [
        ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 8,
         "tensor x: byte range does not fit shape"),
        ({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8,
         "tensor x: runs past the end of the file"),
        ({"x": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 1]}}, b"\0",
         "tensor x: malformed header entry"),
        ({"x": {"dtype": "F32", "shape": [1]}}, b"\0" * 4, "tensor x: malformed header entry"),
        ({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4,
         "tensor x: byte range does not fit"),
    ],
)  # fmt: skip
def test_malformed_headers_name_the_file_and_tensor(tmp_path, header, data, message) -> None:
    path = raw_file(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(CheckpointError, match=rf"bad\.safetensors: {message}"):
        read_header(path)


def test_files_that_are_not_safetensors_are_named(tmp_path: Path) -> None:
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"\1\2")
    with pytest.raises(CheckpointError, match=r"short\.safetensors: not a safetensors file"):
        read_header(short)
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(CheckpointError, match=r"huge.safetensors: not a safetensors file \(head"):
        read_header(huge)
    notjson = tmp_path / "nj.safetensors"
    notjson.write_bytes(struct.pack("<Q", 3) + b"{x}")
    with pytest.raises(CheckpointError, match=r"nj\.safetensors: safetensors header is not valid"):
        read_header(notjson)
    listed = raw_file(tmp_path / "list.safetensors", [], b"")  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match=r"list\.safetensors: .* must be a JSON object"):
        read_header(listed)


def test_a_file_cut_short_while_read_is_named(tmp_path: Path) -> None:
    """The header was read whole; the file then shrinks under the reader."""
    path = tmp_path / "w.safetensors"
    save_file({"a": torch.ones(2), "x": torch.arange(8.0)}, str(path))
    stream = iter_tensors([path])
    assert next(stream)[0] == "a"
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size - 4)
    with pytest.raises(CheckpointError, match=r"w\.safetensors: tensor x: file ends early"):
        next(stream)


def test_bin_files_load_and_metadata_is_not_a_tensor(tmp_path: Path) -> None:
    torch.save({"w": torch.tensor([1.0, 2.0])}, tmp_path / "a.bin")
    assert tensor_shapes([tmp_path / "a.bin"]) == {"w": (2,)}
    [(name, tensor)] = list(iter_tensors([tmp_path / "a.bin"], dtype=torch.float16))
    assert name == "w" and tensor.dtype == torch.float16 and tensor.tolist() == [1.0, 2.0]
    path = tmp_path / "m.safetensors"
    save_file({"x": torch.ones(1)}, str(path), metadata={"format": "pt"})
    assert [t.name for t in read_header(path)] == ["x"]
