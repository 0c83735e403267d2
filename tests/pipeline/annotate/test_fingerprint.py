"""Fingerprints: every input of an annotation changes it, nothing else does.

Nightly runs skip clips whose fingerprint is committed, so a setting left out of it means a
changed run silently keeps stale annotations, and a run-specific value put into it (run id,
endpoint, device) means every night redoes everything. Both directions are checked here for
each setting, one at a time.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from pipeline.annotate.fingerprint import fingerprint, settings_key, work_key
from pipeline.annotate.prompts import PromptSettings
from pipeline.annotate.settings import AnnotateSettings
from pipeline.clips.sampling import SamplingConfig
from pipeline.clips.windows import ClipConfig
from pipeline.core.storage import StorageOptions

BASE = AnnotateSettings(
    run_id="night-1",
    model_source="/models/a",
    prompts=PromptSettings(tag_mode="taxonomy", taxonomy=("dog", "beach")),
    clips=ClipConfig(mode="window", length_s=10.0),
    sampling=SamplingConfig(num_frames=16),
    dtype="bfloat16",
    max_new_tokens=64,
    tag_max_new_tokens=32,
    model_key="a@0123456789ab",
)
ROW = {"video_uri": "s3://b/v.mp4", "video_size": 1234, "video_version": "etag-1", "clip_index": 3}


def _prompts(**update: Any) -> PromptSettings:
    """BASE's prompts with one field changed (everything else as in BASE)."""
    return PromptSettings(**{**BASE.prompts.model_dump(), **update})


# One changed value per input the annotation depends on (each differs from BASE's).
CHANGES_THAT_MATTER: dict[str, dict[str, Any]] = {
    "model weights": {"model_key": "a@ba9876543210"},
    "caption prompt": {"prompts": _prompts(caption="Say what happens.")},
    "tag prompt": {"prompts": _prompts(tags="Tags, please.")},
    "tag mode": {"prompts": _prompts(tag_mode="generate")},
    "taxonomy": {"prompts": _prompts(taxonomy=("dog", "sea"))},
    "taxonomy order": {"prompts": _prompts(taxonomy=("beach", "dog"))},
    "taxonomy question": {"prompts": _prompts(taxonomy_question="Is it {tag}?")},
    "taxonomy threshold": {"prompts": _prompts(taxonomy_threshold=0.7)},
    "taxonomy method": {"prompts": _prompts(taxonomy_method="yes_no")},
    "clip mode": {"clips": ClipConfig(mode="whole")},
    "clip length": {"clips": ClipConfig(mode="window", length_s=5.0)},
    "clip stride": {"clips": ClipConfig(mode="window", length_s=10.0, stride_s=5.0)},
    "clip min length": {"clips": ClipConfig(mode="window", length_s=10.0, min_length_s=2.0)},
    "frames per clip": {"sampling": SamplingConfig(num_frames=8)},
    "sampling mode": {"sampling": SamplingConfig(mode="fps", fps=2.0)},
    "max new tokens": {"max_new_tokens": 65},
    "tag max new tokens": {"tag_max_new_tokens": 31},
    "dtype": {"dtype": "float32"},
}

# Values that differ between runs of the same work: they must not change the fingerprint.
CHANGES_THAT_DO_NOT: dict[str, dict[str, Any]] = {
    "run id": {"run_id": "night-2"},
    "device": {"device": "cuda:1"},
    "storage endpoint": {"storage": StorageOptions(endpoint_url="http://127.0.0.1:9000")},
}


@pytest.mark.parametrize("method", ["EMBED_METHOD", "FOOTAGE_METHOD"])
def test_a_new_embedding_or_footage_method_is_new_work(method, monkeypatch) -> None:
    """The methods join the settings key: outputs made another way are embedded again."""
    import pipeline.annotate.fingerprint as fp

    before = settings_key(BASE)
    monkeypatch.setattr(fp, method, "another-method-v2")
    assert settings_key(BASE) != before


def test_the_base_fingerprint_is_stable() -> None:
    """Same inputs, same fingerprint (in a fresh object too): else nothing is ever skipped."""
    again = replace(BASE, prompts=_prompts(), clips=ClipConfig(mode="window", length_s=10.0))
    assert fingerprint(ROW, BASE) == fingerprint(dict(ROW), again)
    assert fingerprint(ROW, BASE).endswith(":3")


@pytest.mark.parametrize("change", CHANGES_THAT_MATTER.values(), ids=CHANGES_THAT_MATTER.keys())
def test_each_input_changes_the_fingerprint(change: dict[str, Any]) -> None:
    changed = replace(BASE, **change)
    assert settings_key(changed) != settings_key(BASE)
    assert fingerprint(ROW, changed) != fingerprint(ROW, BASE)


@pytest.mark.parametrize("change", CHANGES_THAT_DO_NOT.values(), ids=CHANGES_THAT_DO_NOT.keys())
def test_run_specific_values_leave_the_fingerprint_alone(change: dict[str, Any]) -> None:
    assert fingerprint(ROW, replace(BASE, **change)) == fingerprint(ROW, BASE)


@pytest.mark.parametrize(
    "field,value",
    [("video_uri", "s3://b/w.mp4"), ("video_size", 1235), ("video_version", "etag-2")],
)
def test_the_video_identity_changes_the_fingerprint(field: str, value: Any) -> None:
    """A re-uploaded video (new ETag, same name and size) is annotated again."""
    assert fingerprint({**ROW, field: value}, BASE) != fingerprint(ROW, BASE)
    assert work_key(**{"video_uri": ROW["video_uri"], "video_size": ROW["video_size"],
                       "video_version": ROW["video_version"], field: value},
                    settings_hash="s") != work_key(ROW["video_uri"], ROW["video_size"],
                                                   ROW["video_version"], "s")  # fmt: skip


def test_clips_of_one_video_share_the_work_key_and_differ_by_index() -> None:
    first, second = fingerprint(ROW, BASE), fingerprint({**ROW, "clip_index": 4}, BASE)
    assert first != second
    assert first.rsplit(":", 1)[0] == second.rsplit(":", 1)[0]
    assert (first.rsplit(":", 1)[1], second.rsplit(":", 1)[1]) == ("3", "4")


def test_size_as_string_or_int_is_the_same_video() -> None:
    """Listing gives ints, Parquet round trips may give other int types: same identity."""
    assert fingerprint({**ROW, "video_size": "1234"}, BASE) == fingerprint(ROW, BASE)
