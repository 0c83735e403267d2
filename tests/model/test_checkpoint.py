"""Loading published-format checkpoints: round trips, naming variants, clear errors, safety."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from model import CheckpointError, ConfigError, load_model, save_checkpoint
from tests.helpers import UPSTREAM, build_tiny_model

VIDEOS = torch.randn(2, 3, 3, 56, 56, generator=torch.Generator().manual_seed(1))


def copy_checkpoint(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def assert_loads_like_published(root: Path) -> None:
    """The checkpoint at `root` encodes videos exactly as the published fixture does."""
    loaded = load_model(root, device="cpu")
    reference = load_model(UPSTREAM / "ckpt_group", device="cpu")
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_video(VIDEOS), reference.encode_video(VIDEOS))


def edit_config(root: Path, **changes) -> None:
    raw = json.loads((root / "config.json").read_text())
    raw.update(changes)
    (root / "config.json").write_text(json.dumps(raw))


def test_own_writer_round_trip_gives_identical_outputs(tiny_checkpoint):
    original = build_tiny_model(seed=7)
    loaded = load_model(tiny_checkpoint, device="cpu", dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_video(VIDEOS), original.encode_video(VIDEOS))
    names = set(load_file(str(tiny_checkpoint / "model.safetensors")))
    assert "connector._connector.latents" in names
    assert any(n.startswith("vision_tower._vision_tower.vision_model.encoder") for n in names)
    assert "language_model.lm_head.weight" not in names  # tied, as save_pretrained writes it


def test_model_id_names_checkpoint_and_weights_hash(tiny_checkpoint):
    model = load_model(tiny_checkpoint, device="cpu")
    name, digest = model.model_id.split("@")
    assert name == "tiny-ckpt" and len(digest) == 12


def test_flat_siglip_naming_is_accepted(tmp_path):
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "flat")
    state = load_file(str(root / "model.safetensors"))
    flat = {k.replace("_vision_tower.vision_model.", "_vision_tower."): v for k, v in state.items()}
    assert flat.keys() != state.keys()
    save_file(flat, str(root / "model.safetensors"))
    assert_loads_like_published(root)


def test_sharded_safetensors_load(tmp_path):
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "sharded")
    state = load_file(str(root / "model.safetensors"))
    (root / "model.safetensors").unlink()
    names = sorted(state)
    halves = {
        "model-00001-of-00002.safetensors": names[::2],
        "model-00002-of-00002.safetensors": names[1::2],
    }
    for shard, keys in halves.items():
        save_file({k: state[k] for k in keys}, str(root / shard))
    weight_map = {k: shard for shard, keys in halves.items() for k in keys}
    (root / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    assert_loads_like_published(root)


def test_plain_pytorch_bin_weights_load(tmp_path):
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "bin")
    state = load_file(str(root / "model.safetensors"))
    (root / "model.safetensors").unlink()
    torch.save(state, root / "pytorch_model.bin")
    assert_loads_like_published(root)


def test_missing_tensor_is_named(tmp_path):
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "missing")
    state = load_file(str(root / "model.safetensors"))
    del state["connector._connector.layers.1.0.to_q.weight"]
    save_file(state, str(root / "model.safetensors"))
    with pytest.raises(
        CheckpointError, match=r"missing tensors connector\._connector\.layers\.1\.0\.to_q"
    ):
        load_model(root, device="cpu")


def test_mismatched_shape_is_named(tmp_path):
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "shape")
    edit_config(root, num_queries=12, group=4)
    with pytest.raises(CheckpointError, match=r"connector\._connector\.latents: shape \(2, 64\)"):
        load_model(root, device="cpu")


def test_unexpected_tensor_is_named(tmp_path):
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "extra")
    state = load_file(str(root / "model.safetensors"))
    state["connector._connector.extra_gate"] = torch.zeros(3)
    save_file(state, str(root / "model.safetensors"))
    with pytest.raises(
        CheckpointError, match=r"unexpected tensors connector\._connector\.extra_gate"
    ):
        load_model(root, device="cpu")


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"model_type": "llava"}, "model_type"),
        ({"connector_type": "mlp2x_gelu"}, "connector_type"),
        ({"num_queries": 10}, "num_queries"),
        ({"group": None}, "group"),
        ({"vision_feature_select_strategy": "cls"}, "vision_feature_select_strategy"),
        ({"text_config": {"model_type": "llama"}}, "text_config.model_type"),
    ],
)
def test_bad_config_names_the_field(tmp_path, changes, field):
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "bad")
    edit_config(root, **changes)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_model(root, device="cpu")


def test_config_paths_are_never_resolved(tmp_path):
    """`*_name_or_path` fields name the authors' disks; loading must not need them."""
    raw = json.loads((UPSTREAM / "ckpt_group" / "config.json").read_text())
    assert not Path(raw["llm_model_name_or_path"]).exists()
    assert load_model(UPSTREAM / "ckpt_group", device="cpu") is not None


SENTINEL_CODE = "import pathlib; pathlib.Path({path!r}).write_text('executed')\n"


def test_config_asking_for_remote_code_is_refused_and_nothing_runs(tmp_path):
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "remote-code")
    sentinel = tmp_path / "executed.txt"
    (root / "configuration_tinyllava.py").write_text(SENTINEL_CODE.format(path=str(sentinel)))
    (root / "modeling_tinyllava.py").write_text(SENTINEL_CODE.format(path=str(sentinel)))
    edit_config(
        root,
        auto_map={
            "AutoConfig": "configuration_tinyllava.TinyLlavaConfig",
            "AutoModelForCausalLM": "modeling_tinyllava.TinyLlavaForConditionalGeneration",
        },
    )
    with pytest.raises(ConfigError, match=r"auto_map.*never executes checkpoint code"):
        load_model(root, device="cpu")
    assert not sentinel.exists()


def test_tokenizer_asking_for_remote_code_is_refused(tmp_path):
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "remote-tokenizer")
    sentinel = tmp_path / "executed.txt"
    (root / "tokenization_evil.py").write_text(SENTINEL_CODE.format(path=str(sentinel)))
    tok_config = json.loads((root / "tokenizer_config.json").read_text())
    tok_config["auto_map"] = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}
    (root / "tokenizer_config.json").write_text(json.dumps(tok_config))
    with pytest.raises(CheckpointError, match="auto_map"):
        load_model(root, device="cpu")
    assert not sentinel.exists()


class _Payload:
    """Unpickling this calls `exec`: what a malicious `.bin` would carry."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (exec, (SENTINEL_CODE.format(path=self.path),))


def test_pickle_payload_in_bin_weights_executes_nothing(tmp_path):
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "pickle")
    sentinel = tmp_path / "executed.txt"
    state = load_file(str(root / "model.safetensors"))
    (root / "model.safetensors").unlink()
    state["connector._connector.latents"] = _Payload(str(sentinel))
    with open(root / "pytorch_model.bin", "wb") as fh:
        pickle.dump(state, fh)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_model(root, device="cpu")
    assert not sentinel.exists()


def test_shard_index_pointing_outside_is_refused(tmp_path):
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "escape")
    (root / "model.safetensors").rename(tmp_path / "outside.safetensors")
    index = {"weight_map": {"x": "../outside.safetensors"}}
    (root / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="points outside the checkpoint"):
        load_model(root, device="cpu")


def test_not_a_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        load_model(tmp_path / "nope", device="cpu")
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        load_model(tmp_path, device="cpu")


def test_saved_tokenizer_names_a_class_every_transformers_version_knows(tmp_path):
    from model import load_tokenizer
    from model.toy.tokenizer import build_tokenizer

    model = build_tiny_model(seed=2)
    model.tokenizer = build_tokenizer()
    root = save_checkpoint(model, tmp_path / "toy-tokenizer")
    settings = json.loads((root / "tokenizer_config.json").read_text())
    assert settings["tokenizer_class"] == "PreTrainedTokenizerFast"
    text = "a red circle moves from left to right"
    assert load_tokenizer(root)(text).input_ids == model.tokenizer(text).input_ids


def test_model_id_digest_is_the_sha256_of_the_weight_bytes(tmp_path):
    """Catches a digest over the wrong bytes (names, config), a truncated read, or a constant."""
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "digest")
    expected = hashlib.sha256((root / "model.safetensors").read_bytes()).hexdigest()[:12]
    assert load_model(root, device="cpu").model_id == f"digest@{expected}"

    state = load_file(str(root / "model.safetensors"))
    state["connector._connector.latents"] = state["connector._connector.latents"] + 1e-3
    save_file(state, str(root / "model.safetensors"))
    changed = hashlib.sha256((root / "model.safetensors").read_bytes()).hexdigest()[:12]
    assert changed != expected
    assert load_model(root, device="cpu").model_id == f"digest@{changed}"


def test_sharded_digest_covers_every_shard_in_name_order(tmp_path):
    """Catches a digest of the first shard only, or one that depends on listing order."""
    from model.checkpoint import weight_files, weights_digest

    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "sharded-digest")
    state = load_file(str(root / "model.safetensors"))
    (root / "model.safetensors").unlink()
    names = sorted(state)
    shards = {
        "model-00001-of-00002.safetensors": names[:5],
        "model-00002-of-00002.safetensors": names[5:],
    }
    for shard, keys in shards.items():
        save_file({k: state[k] for k in keys}, str(root / shard))
    # The index names the second shard first: the digest must not follow the index's order.
    weight_map = {k: s for s, keys in reversed(shards.items()) for k in keys}
    (root / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    both = b"".join((root / s).read_bytes() for s in sorted(shards))
    assert weights_digest(weight_files(root)) == hashlib.sha256(both).hexdigest()
    assert weights_digest(reversed(weight_files(root))) == hashlib.sha256(both).hexdigest()


def test_config_that_is_not_json_is_a_checkpoint_error(tmp_path):
    """Catches a bare JSONDecodeError traceback instead of a message naming the file."""
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "badjson")
    (root / "config.json").write_text('{"model_type": "tinyllava",')
    with pytest.raises(CheckpointError, match=r"config\.json: not valid JSON"):
        load_model(root, device="cpu")


def test_config_that_is_not_an_object_is_refused(tmp_path):
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "list")
    (root / "config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        load_model(root, device="cpu")


def _shard(root: Path, index: dict | str) -> None:
    state = load_file(str(root / "model.safetensors"))
    (root / "model.safetensors").unlink()
    save_file(state, str(root / "model-00001-of-00001.safetensors"))
    text = index if isinstance(index, str) else json.dumps(index)
    (root / "model.safetensors.index.json").write_text(text)


def test_missing_shard_is_named(tmp_path):
    """Catches loading a partial model (or a FileNotFoundError) when a shard never arrived."""
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "noshard")
    names = list(load_file(str(root / "model.safetensors")))
    weight_map = {n: "model-00001-of-00001.safetensors" for n in names}
    weight_map[names[0]] = "model-00002-of-00002.safetensors"
    _shard(root, {"weight_map": weight_map})
    with pytest.raises(CheckpointError, match=r"missing: \['model-00002-of-00002\.safetensors'\]"):
        load_model(root, device="cpu")


@pytest.mark.parametrize(
    "index",
    [
        '{"weight_map": ',  # truncated JSON
        {"metadata": {}},  # no weight_map
        {"weight_map": ["model-00001-of-00001.safetensors"]},  # not a mapping
        {"weight_map": {"x": 3}},  # a shard name that is not a string
        [],  # not an object
    ],
    ids=["truncated", "no-weight-map", "list-map", "non-string-shard", "not-object"],
)
def test_malformed_shard_index_is_a_checkpoint_error(tmp_path, index):
    """Catches JSONDecodeError / KeyError / TypeError tracebacks from a broken index file."""
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "badindex")
    _shard(root, index)
    with pytest.raises(CheckpointError, match=r"model\.safetensors\.index\.json"):
        load_model(root, device="cpu")


def test_no_weights_at_all_is_named(tmp_path):
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "noweights")
    (root / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"no weights \(model\.safetensors"):
        load_model(root, device="cpu")


def test_no_tokenizer_files_is_named(tmp_path):
    """Catches a transformers traceback (or a hub lookup) when the tokenizer files are absent."""
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "notok")
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):
        (root / name).unlink()
    with pytest.raises(CheckpointError, match=r"no tokenizer files"):
        load_model(root, device="cpu")


def test_unknown_tokenizer_class_is_refused(tmp_path):
    """Catches falling back to a dynamic class lookup for a name transformers does not ship."""
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "tokclass")
    settings = json.loads((root / "tokenizer_config.json").read_text())
    settings["tokenizer_class"] = "EvilTokenizerFast"
    (root / "tokenizer_config.json").write_text(json.dumps(settings))
    with pytest.raises(CheckpointError, match=r"EvilTokenizerFast.*not built in"):
        load_model(root, device="cpu")


def test_tokenizer_config_that_is_not_json_is_a_checkpoint_error(tmp_path):
    root = copy_checkpoint(UPSTREAM / "ckpt_group", tmp_path / "tokjson")
    (root / "tokenizer_config.json").write_text("{")
    with pytest.raises(CheckpointError, match=r"tokenizer_config\.json"):
        load_model(root, device="cpu")
