"""Checkpoint reading, function by function, on tiny hand-made files (no model is built).

Fast companions of test_checkpoint.py (which loads whole models): names, weight-file
discovery, the shard index, the digest and the tensor checks, with literal expectations.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from model.checkpoint import (
    CheckpointError,
    _short,
    canonical_name,
    load_weights_into,
    published_name,
    read_config,
    read_weights,
    weight_files,
    weights_digest,
)


@pytest.mark.parametrize(
    "name,canonical",
    [
        ("vision_tower._vision_tower.vision_model.encoder.x", "vision_tower.siglip.encoder.x"),
        ("vision_tower._vision_tower.encoder.x", "vision_tower.siglip.encoder.x"),
        ("vision_tower.siglip.vision_model.encoder.x", "vision_tower.siglip.encoder.x"),
        ("connector._connector.latents", "connector.latents"),
        ("language_model.model.embed_tokens.weight", "language_model.model.embed_tokens.weight"),
        ("something.else", "something.else"),
        # only a prefix is renamed, never the middle of a name
        ("x.connector._connector.y", "x.connector._connector.y"),
    ],
)
def test_canonical_names(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


@pytest.mark.parametrize(
    "module_name,published",
    [
        ("vision_tower.siglip.encoder.x", "vision_tower._vision_tower.vision_model.encoder.x"),
        ("connector.latents", "connector._connector.latents"),
        ("language_model.lm_head.weight", "language_model.lm_head.weight"),
    ],
)
def test_published_names(module_name: str, published: str) -> None:
    assert published_name(module_name) == published
    assert canonical_name(published) == canonical_name(module_name)


def _tensors(path: Path, **named: torch.Tensor) -> Path:
    save_file(named, str(path))
    return path


def test_single_safetensors_file_is_preferred_over_bin_and_index(tmp_path: Path) -> None:
    single = _tensors(tmp_path / "model.safetensors", a=torch.ones(2))
    torch.save({"a": torch.zeros(2)}, tmp_path / "pytorch_model.bin")
    (tmp_path / "model.safetensors.index.json").write_text('{"weight_map": {"a": "nope"}}')
    assert weight_files(tmp_path) == [single]


def test_safetensors_index_is_preferred_over_bin(tmp_path: Path) -> None:
    shard = _tensors(tmp_path / "s-1.safetensors", a=torch.ones(2))
    torch.save({"a": torch.zeros(2)}, tmp_path / "pytorch_model.bin")
    (tmp_path / "model.safetensors.index.json").write_text(
        '{"weight_map": {"a": "s-1.safetensors"}}'
    )
    assert weight_files(tmp_path) == [shard.resolve()]


def test_bin_file_and_bin_index(tmp_path: Path) -> None:
    torch.save({"a": torch.zeros(2)}, tmp_path / "pytorch_model.bin")
    assert weight_files(tmp_path) == [tmp_path / "pytorch_model.bin"]
    (tmp_path / "pytorch_model.bin").unlink()
    torch.save({"a": torch.zeros(2)}, tmp_path / "p-2.bin")
    torch.save({"b": torch.zeros(2)}, tmp_path / "p-1.bin")
    index = {"weight_map": {"a": "p-2.bin", "b": "p-1.bin", "c": "p-2.bin"}}
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    # each shard once, in name order
    assert weight_files(tmp_path) == [
        (tmp_path / "p-1.bin").resolve(),
        (tmp_path / "p-2.bin").resolve(),
    ]


def test_nothing_to_load(tmp_path: Path) -> None:
    with pytest.raises(
        CheckpointError, match=r"no weights \(model\.safetensors, pytorch_model\.bin or an index\)"
    ):
        weight_files(tmp_path)


def test_index_errors_name_the_index(tmp_path: Path) -> None:
    index = tmp_path / "model.safetensors.index.json"
    for text, message in [
        ("{", "not valid JSON"),
        ("[]", "non-empty 'weight_map'"),
        ('{"weight_map": {}}', "non-empty 'weight_map'"),
        ('{"weight_map": {"a": ""}}', "shard file names"),
        ('{"weight_map": {"a": null}}', "shard file names"),
    ]:
        index.write_text(text)
        with pytest.raises(CheckpointError, match=message) as info:
            weight_files(tmp_path)
        assert str(index) in str(info.value)


def test_shard_escaping_the_directory_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    root.mkdir()
    _tensors(tmp_path / "outside.safetensors", a=torch.ones(1))
    (root / "model.safetensors.index.json").write_text(
        '{"weight_map": {"a": "../outside.safetensors"}}'
    )
    with pytest.raises(
        CheckpointError, match=r"shard name '\.\./outside\.safetensors' points outside"
    ):
        weight_files(root)


def test_read_config_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        read_config(tmp_path)
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(CheckpointError, match=r"config\.json: not valid JSON"):
        read_config(tmp_path)


def test_read_weights_merges_files_and_refuses_non_tensors(tmp_path: Path) -> None:
    a = _tensors(tmp_path / "a.safetensors", x=torch.tensor([1.0, 2.0]))
    torch.save({"y": torch.tensor([3.0])}, tmp_path / "b.bin")
    state = read_weights([a, tmp_path / "b.bin"])
    assert sorted(state) == ["x", "y"] and state["y"].tolist() == [3.0]
    torch.save({"z": 3}, tmp_path / "c.bin")
    with pytest.raises(CheckpointError, match="expected a dict of tensors"):
        read_weights([tmp_path / "c.bin"])
    torch.save([torch.ones(1)], tmp_path / "d.bin")
    with pytest.raises(CheckpointError, match="expected a dict of tensors"):
        read_weights([tmp_path / "d.bin"])


def test_weights_digest_is_sha256_of_the_files_in_path_order(tmp_path: Path) -> None:
    (tmp_path / "b").write_bytes(b"world")
    (tmp_path / "a").write_bytes(b"hello ")
    expected = hashlib.sha256(b"hello world").hexdigest()
    assert weights_digest([tmp_path / "b", tmp_path / "a"]) == expected
    big = tmp_path / "big"
    big.write_bytes(b"x" * ((1 << 22) + 5))  # more than one read block
    assert weights_digest([big]) == hashlib.sha256(b"x" * ((1 << 22) + 5)).hexdigest()


def test_short_lists() -> None:
    assert _short(["a", "b"]) == "a, b"
    assert (
        _short([str(i) for i in range(14)], limit=12)
        == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 2 more"
    )
    assert _short([str(i) for i in range(12)], limit=12).endswith("10, 11")
    assert _short([str(i) for i in range(13)]).endswith(", 11 and 1 more")  # default: 12 named


class _Tiny(nn.Module):
    """Module names as TinyLlavaVideo has them, in miniature, with a buffer and a tied head."""

    def __init__(self) -> None:
        super().__init__()
        self.connector = nn.Linear(2, 3)
        self.language_model = _TinyLM()
        self.register_buffer("scale", torch.ones(1))


class _TinyLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(4, 2)
        self.lm_head = nn.Linear(2, 4, bias=False)
        self.tied = 0

    def tie_weights(self) -> None:
        self.lm_head.weight = self.embed.weight
        self.tied += 1


def _published_state() -> dict[str, torch.Tensor]:
    return {
        "connector._connector.weight": torch.full((3, 2), 0.5),
        "connector._connector.bias": torch.tensor([1.0, 2.0, 3.0]),
        "language_model.embed.weight": torch.arange(8.0).reshape(4, 2),
    }


def test_load_weights_into_copies_renamed_tensors_and_ties() -> None:
    model = _Tiny()
    state = {**_published_state(), "x.position_ids": torch.arange(3), "scale": torch.ones(1)}
    load_weights_into(model, state, tied=True)
    assert model.connector.bias.tolist() == [1.0, 2.0, 3.0]
    assert model.connector.weight.tolist() == [[0.5, 0.5]] * 3
    assert (
        model.language_model.lm_head.weight.data_ptr()
        == model.language_model.embed.weight.data_ptr()
    )
    assert model.language_model.tied == 1


def test_load_weights_into_untied_needs_the_head() -> None:
    with pytest.raises(CheckpointError, match=r"missing tensors language_model\.lm_head\.weight$"):
        load_weights_into(_Tiny(), _published_state(), tied=False)
    model = _Tiny()
    load_weights_into(
        model, {**_published_state(), "language_model.lm_head.weight": torch.ones(4, 2)}, tied=False
    )
    assert model.language_model.tied == 0 and model.language_model.lm_head.weight.sum() == 8


def test_load_weights_into_names_missing_and_unexpected_together() -> None:
    state = _published_state()
    del state["connector._connector.bias"]
    state["connector._connector.gate"] = torch.ones(1)
    with pytest.raises(CheckpointError) as info:
        load_weights_into(_Tiny(), state, tied=True)
    assert str(info.value) == (
        "checkpoint does not match its config: missing tensors connector._connector.bias; "
        "unexpected tensors connector._connector.gate"
    )


def test_load_weights_into_names_a_wrong_shape() -> None:
    state = {**_published_state(), "connector._connector.bias": torch.ones(4)}
    with pytest.raises(
        CheckpointError,
        match=r"connector\._connector\.bias: shape \(4,\) in the checkpoint, \(3,\) expected",
    ):
        load_weights_into(_Tiny(), state, tied=True)
