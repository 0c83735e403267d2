"""The example run configs in jobs/configs/ validate as shipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "jobs" / "configs"
EXPECTED = {"toy-local.yaml", "s3-window.yaml", "taxonomy.yaml"}


def test_examples_present() -> None:
    assert {p.name for p in CONFIGS.glob("*.yaml")} >= EXPECTED


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_example_validates(path: Path) -> None:
    config = load_config(path)
    assert config.input and config.output


def test_toy_local() -> None:
    config = load_config(CONFIGS / "toy-local.yaml")
    assert config.model.source == "toy"
    assert config.clips.mode == "whole"
    assert not config.input.startswith("s3://") and not config.output.startswith("s3://")


def test_s3_window() -> None:
    config = load_config(CONFIGS / "s3-window.yaml")
    assert config.input.startswith("s3://") and config.output.startswith("s3://")
    assert config.storage.endpoint_url is None  # commented out: AWS by default
    assert (config.clips.mode, config.clips.length_s) == ("window", 10.0)
    assert config.sampling.num_frames == 16
    assert config.prompts.tag_mode == "generate"


def test_taxonomy() -> None:
    config = load_config(CONFIGS / "taxonomy.yaml")
    assert config.prompts.tag_mode == "taxonomy"
    assert 3 <= len(config.prompts.taxonomy) <= 20
    assert len(set(config.prompts.taxonomy)) == len(config.prompts.taxonomy)


def test_overrides_apply_to_examples() -> None:
    config = load_config(CONFIGS / "s3-window.yaml", {"storage": {"endpoint_url": "http://x:9000"}})
    assert config.storage.endpoint_url == "http://x:9000"
