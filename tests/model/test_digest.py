"""The weights' identity: the sha256 of the weight bytes, hashed once per file version and
read back from the digest cache while the file is unchanged."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import torch

from model import load_model
from model.checkpoint import weight_files, weights_digest
from model.digest import digest_cache_dir, file_versions_key
from tests.helpers import UPSTREAM


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLIPNOTE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "digests"


def checkpoint(tmp_path: Path, name: str = "ckpt") -> Path:
    return Path(shutil.copytree(UPSTREAM / "ckpt_group", tmp_path / name))


def test_digest_cache_sits_in_the_clipnote_cache(cache: Path) -> None:
    assert digest_cache_dir() == cache


def test_second_load_takes_the_id_from_the_cache_not_the_bytes(tmp_path: Path, cache: Path):
    """Catches a full hash at every actor start: a planted entry for the file's exact version
    is what the second load reports."""
    root = checkpoint(tmp_path)
    weights = root / "model.safetensors"
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert load_model(root, device="cpu").model_id == f"ckpt@{sha[:12]}"
    entry = cache / f"{file_versions_key([weights])}.sha256"
    assert entry.read_text() == sha + "\n"
    entry.write_text("ab" * 32 + "\n")
    assert load_model(root, device="cpu").model_id == "ckpt@abababababab"


def test_changed_bytes_change_the_id_even_with_size_and_mtime_put_back(tmp_path, cache):
    """Catches a cache keyed by size and mtime alone: a same-size rewrite whose mtime is set
    back (as `cp -p`, `rsync -t` or an unpacked archive leave it) must still be hashed."""
    root = checkpoint(tmp_path)
    weights = root / "model.safetensors"
    first = load_model(root, device="cpu").model_id
    before = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # the last byte of the last tensor: same size, other weights
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (weights.stat().st_size, weights.stat().st_mtime_ns) == (
        before.st_size,
        before.st_mtime_ns,
    )
    second = load_model(root, device="cpu").model_id
    assert second != first
    assert second == f"ckpt@{hashlib.sha256(bytes(data)).hexdigest()[:12]}"


def test_a_copy_is_hashed_again_and_gets_the_same_id(tmp_path: Path, cache: Path) -> None:
    """Same bytes elsewhere, same identity (a local directory and its fetched copy agree)."""
    a, b = checkpoint(tmp_path, "a"), checkpoint(tmp_path, "b")
    digest_a = weights_digest(weight_files(a))
    assert weights_digest(weight_files(b)) == digest_a
    assert len(list(cache.glob("*.sha256"))) == 2


def test_junk_in_the_cache_is_ignored_and_an_unwritable_cache_still_gives_the_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = checkpoint(tmp_path)
    files = weight_files(root)
    sha = hashlib.sha256((root / "model.safetensors").read_bytes()).hexdigest()
    monkeypatch.setenv("CLIPNOTE_CACHE", str(tmp_path / "c"))
    entry = digest_cache_dir() / f"{file_versions_key(files)}.sha256"
    entry.parent.mkdir(parents=True)
    entry.write_text("not a digest\n")
    assert weights_digest(files) == sha
    assert entry.read_text() == sha + "\n"
    (tmp_path / "plain-file").write_text("")
    monkeypatch.setenv("CLIPNOTE_CACHE", str(tmp_path / "plain-file"))  # cannot hold a folder
    assert weights_digest(files) == sha


def test_toy_checkpoint_is_never_written_to(tmp_path: Path, cache: Path) -> None:
    """The package's own checkpoint directory stays as shipped (the cache is elsewhere)."""
    from model.checkpoint import TOY_CHECKPOINT_DIR

    before = sorted(p.name for p in TOY_CHECKPOINT_DIR.iterdir())
    load_model(TOY_CHECKPOINT_DIR, device="cpu", dtype=torch.float32)
    assert sorted(p.name for p in TOY_CHECKPOINT_DIR.iterdir()) == before
    assert len(list(cache.glob("*.sha256"))) == 1
