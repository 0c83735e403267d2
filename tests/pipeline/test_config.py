"""Run config: YAML + `--set` overrides, validated up front; errors name the bad field."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.clips.sampling import SamplingConfig
from pipeline.clips.windows import ClipConfig
from pipeline.config import (
    TOY_MODEL,
    ConfigError,
    RunConfig,
    build_config,
    load_config,
    parse_overrides,
)

BASE = {"input": "s3://videos/2026-01-01/", "output": "s3://captions/runs"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_minimal_config_gets_the_documented_defaults():
    config = build_config(dict(BASE))
    assert isinstance(config, RunConfig)
    assert config.input == "s3://videos/2026-01-01" and config.output == "s3://captions/runs"
    assert config.model.source == TOY_MODEL
    assert isinstance(config.clips, ClipConfig) and config.clips.mode == "window"
    assert isinstance(config.sampling, SamplingConfig) and config.sampling.num_frames is None
    assert config.run_id is None


def test_yaml_file_with_every_section(tmp_path):
    path = _write(
        tmp_path,
        """
input: /data/videos
output: s3://out/runs
run_id: nightly-2026.01.02
storage: {endpoint_url: "http://127.0.0.1:9000", region: eu-west-1}
clips: {mode: window, length_s: 4, stride_s: 2, min_length_s: 0.5}
sampling: {mode: fps, fps: 2, max_frames: 12}
model: {source: /ckpt, dtype: float32, batch_size: 4}
prompts: {tag_mode: taxonomy, taxonomy: [dog, cat]}
resources: {annotate_actors: 2, gpus_per_actor: 0.5}
output_options: {thumbnail_size: 64}
""",
    )
    config = load_config(path)
    assert config.run_id == "nightly-2026.01.02"
    assert config.storage.options().endpoint_url == "http://127.0.0.1:9000"
    assert config.clips == ClipConfig(mode="window", length_s=4, stride_s=2, min_length_s=0.5)
    assert config.sampling == SamplingConfig(mode="fps", fps=2.0, max_frames=12)
    assert config.model.dtype == "float32" and config.model.batch_size == 4
    assert config.prompts.taxonomy == ("dog", "cat")
    assert config.resources.gpus_per_actor == 0.5
    assert config.output_options.thumbnail_size == 64


def _error(raw, overrides=None) -> str:
    with pytest.raises(ConfigError) as info:
        build_config(raw, overrides)
    return str(info.value)


def test_typo_key_is_an_error_naming_the_field():
    message = _error({**BASE, "clips": {"lenght_s": 5}})
    assert "clips.lenght_s" in message


def test_unknown_top_level_section_is_an_error():
    assert "clip:" in _error({**BASE, "clip": {"length_s": 5}})


@pytest.mark.parametrize(
    ("section", "values", "field"),
    [
        ("clips", {"length_s": -5}, "clips.length_s"),
        ("clips", {"stride_s": 0}, "clips.stride_s"),
        ("clips", {"min_length_s": -1}, "clips.min_length_s"),
        ("sampling", {"num_frames": -4}, "sampling.num_frames"),
        ("sampling", {"fps": -1}, "sampling.fps"),
        ("sampling", {"max_frames": 0}, "sampling.max_frames"),
        ("model", {"batch_size": 0}, "model.batch_size"),
        ("model", {"max_new_tokens": -1}, "model.max_new_tokens"),
        ("resources", {"decode_cpus": -1}, "resources.decode_cpus"),
        ("resources", {"gpus_per_actor": -1}, "resources.gpus_per_actor"),
        ("prompts", {"taxonomy_threshold": 1.5}, "prompts.taxonomy_threshold"),
        ("output_options", {"thumbnail_size": 0}, "output_options.thumbnail_size"),
    ],
)
def test_negative_or_out_of_range_values_name_the_field(section, values, field):
    assert field in _error({**BASE, section: values})


@pytest.mark.parametrize(
    ("section", "values", "field"),
    [
        ("clips", {"mode": "scenes"}, "clips.mode"),
        ("sampling", {"mode": "random"}, "sampling.mode"),
        ("model", {"dtype": "int8"}, "model.dtype"),
        ("prompts", {"tag_mode": "always"}, "prompts.tag_mode"),
    ],
)
def test_bad_enum_value_names_the_field(section, values, field):
    assert field in _error({**BASE, section: values})


def test_bad_enum_lists_the_allowed_values():
    message = _error({**BASE, "sampling": {"mode": "random"}})
    assert "uniform" in message and "fps" in message


def test_wrong_type_names_the_field():
    assert "sampling.num_frames" in _error({**BASE, "sampling": {"num_frames": "many"}})
    assert "clips" in _error({**BASE, "clips": 5})


@pytest.mark.parametrize("missing", ["input", "output"])
def test_missing_input_or_output_is_an_error(missing):
    raw = {k: v for k, v in BASE.items() if k != missing}
    message = _error(raw)
    assert f"{missing}:" in message and "required" in message.lower()


def test_blank_input_is_an_error():
    assert "input" in _error({**BASE, "input": "   "})


def test_run_id_must_be_a_safe_name():
    assert "run_id" in _error({**BASE, "run_id": "../../etc"})
    assert "run_id" in _error({**BASE, "run_id": "a b"})


def test_taxonomy_question_needs_a_tag_slot():
    assert "prompts.taxonomy_question" in _error(
        {**BASE, "prompts": {"taxonomy_question": "Is it a dog?"}}
    )


def test_all_bad_fields_are_reported_at_once():
    message = _error({"clips": {"lenght_s": 1}, "model": {"batch_size": 0}})
    for field in ("input", "output", "clips.lenght_s", "model.batch_size"):
        assert field in message


def test_config_must_be_a_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        build_config(["input", "output"])  # type: ignore[arg-type]


# -- --set overrides -----------------------------------------------------------------------


def test_parse_overrides_builds_nested_yaml_values():
    tree = parse_overrides(
        [
            "clips.length_s=5",
            "clips.mode=whole",
            "prompts.taxonomy=[dog, cat, beach]",
            "model.source=s3://models/ckpt?v=2",
            "resources.gpus_per_actor=0.5",
            "sampling.num_frames=null",
        ]
    )
    assert tree == {
        "clips": {"length_s": 5, "mode": "whole"},
        "prompts": {"taxonomy": ["dog", "cat", "beach"]},
        "model": {"source": "s3://models/ckpt?v=2"},
        "resources": {"gpus_per_actor": 0.5},
        "sampling": {"num_frames": None},
    }


def test_override_value_may_contain_equals_signs():
    assert parse_overrides(["prompts.caption=a=b"]) == {"prompts": {"caption": "a=b"}}


@pytest.mark.parametrize("item", ["clips.length_s", "=5", "9lives=1", "clips length=3"])
def test_malformed_override_is_an_error(item):
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides([item])


def test_override_into_a_scalar_is_an_error():
    with pytest.raises(ConfigError, match=r"clips\.length_s"):
        parse_overrides(["clips.length_s=5", "clips.length_s.x=1"])


def test_overrides_win_over_yaml_and_keep_the_rest_of_the_section(tmp_path):
    path = _write(tmp_path, "input: a\noutput: b\nclips: {length_s: 4, stride_s: 2}\n")
    config = load_config(path, parse_overrides(["clips.length_s=6", "prompts.taxonomy=[x]"]))
    assert config.clips.length_s == 6.0 and config.clips.stride_s == 2.0
    assert config.prompts.taxonomy == ("x",)


def test_overrides_are_validated_like_the_file(tmp_path):
    path = _write(tmp_path, "input: a\noutput: b\n")
    with pytest.raises(ConfigError, match=r"clips\.lenght_s"):
        load_config(path, parse_overrides(["clips.lenght_s=3"]))
    with pytest.raises(ConfigError, match=r"model\.batch_size"):
        load_config(path, parse_overrides(["model.batch_size=-2"]))


def test_overrides_alone_make_a_config():
    config = load_config(None, parse_overrides(["input=/videos", "output=/out"]))
    assert (config.input, config.output) == ("/videos", "/out")


# -- YAML files ------------------------------------------------------------------------------


def test_yaml_syntax_error_names_the_file(tmp_path):
    path = _write(tmp_path, "input: a\nclips: {length_s: 4\n  stride_s: [\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "not valid YAML" in str(info.value)


def test_yaml_that_is_not_a_mapping_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="mapping"):
        load_config(_write(tmp_path, "- input\n- output\n"))


def test_empty_yaml_file_needs_input_and_output(tmp_path):
    with pytest.raises(ConfigError, match="input"):
        load_config(_write(tmp_path, ""))


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "nope.yaml")


def test_config_is_frozen_and_round_trips_through_json():
    config = build_config({**BASE, "clips": {"length_s": 3}, "prompts": {"taxonomy": ["a"]}})
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type
        config.input = "elsewhere"  # type: ignore[misc]
    again = build_config(config.model_dump(mode="json"))
    assert again == config


def test_relative_and_home_paths_become_absolute_once(tmp_path, monkeypatch):
    """Caught: a relative output reaching the sink (whose clean-up then deleted the run's own
    file) and ids that change with the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", "/home/someone")
    config = build_config(
        {"input": "videos/", "output": "file://out", "model": {"source": "~/ckpt"}}
    )
    assert config.input == f"{tmp_path}/videos"
    assert config.output == f"{tmp_path}/out"
    assert config.model.source == "/home/someone/ckpt"


def test_remote_locations_are_scheme_qualified_without_trailing_slash():
    config = build_config({"input": "S3://bucket/videos/", "output": "s3://bucket"})
    assert (config.input, config.output, config.model.source) == (
        "s3://bucket/videos", "s3://bucket", "toy",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("gs://bucket/x", "input: unsupported scheme 'gs://'"),
        ("s3:///key", "input: 's3:///key' names no bucket"),
        ("   ", "input: must not be empty"),
    ],
)
def test_unusable_locations_name_the_field(value, message):
    with pytest.raises(ConfigError) as err:
        build_config({"input": value, "output": "o"})
    assert message in str(err.value)


def test_stride_follows_length_unless_set():
    """Caught: `--set clips.length_s=4` kept the default 10 s stride (60% never captioned)."""
    config = build_config(dict(BASE), parse_overrides(["clips.length_s=4"]))
    assert (config.clips.length_s, config.clips.stride_s) == (4.0, 4.0)
    overlapping = build_config(
        dict(BASE), parse_overrides(["clips.length_s=4", "clips.stride_s=2"])
    )
    assert overlapping.clips.stride_s == 2.0


def test_stride_leaving_gaps_must_be_asked_for():
    with pytest.raises(ConfigError) as err:
        build_config(dict(BASE), parse_overrides(["clips.length_s=4", "clips.stride_s=10"]))
    assert "clips.stride_s 10 > clips.length_s 4 leaves 6 s of every 10 s uncaptioned" in str(
        err.value
    )
    gaps = build_config(
        dict(BASE),
        parse_overrides(["clips.length_s=4", "clips.stride_s=10", "clips.allow_gaps=true"]),
    )
    assert gaps.clips.stride_s == 10.0
