"""The load-memory benchmark's measurement, at a tiny size: one fresh child per measurement,
loading with the named checkout's `model` package. No ratio is asserted: at a few MB the
import baseline's noise is larger than the checkpoint (tests/model/test_loading.py checks
how the model is loaded)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from benchmarks.load_rss import MID_TEXT, MID_VISION, ROOT, measure
from benchmarks.model import build_model


def test_measure_reports_one_fresh_load_of_this_checkout(tiny_checkpoint: Path) -> None:
    weights = tiny_checkpoint / "model.safetensors"
    run = measure(tiny_checkpoint, ROOT, "bfloat16")
    assert run.checkpoint_bytes == weights.stat().st_size
    assert 0 < run.baseline <= run.peak
    assert run.ratio == (run.peak - run.baseline) / run.checkpoint_bytes
    assert run.dtypes == ["torch.bfloat16"]
    assert run.model_id == f"tiny-ckpt@{hashlib.sha256(weights.read_bytes()).hexdigest()[:12]}"


def test_measure_refuses_a_checkout_without_the_model_package(tiny_checkpoint, tmp_path):
    """Catches a 'before' column measured with this tree's code by mistake."""
    with pytest.raises(RuntimeError, match=r"model came from|load in .* failed"):
        measure(tiny_checkpoint, tmp_path, "float32")


def test_mid_size_checkpoint_is_over_1_5_gb() -> None:
    """The benchmark's default checkpoint, counted on the meta device (nothing written)."""
    model = build_model(MID_TEXT, MID_VISION, 8, 512, "meta", torch.float32)
    assert sum(p.numel() for p in model.parameters()) * 4 > 1.5e9
