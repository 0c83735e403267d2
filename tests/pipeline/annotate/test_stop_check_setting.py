"""`model.stop_check_every`: set in the config, it reaches the actor's generation settings and
leaves fingerprints alone (answers do not depend on it: tests/model/test_generation_steps.py)."""

from __future__ import annotations

import pytest

from pipeline.annotate.annotator import Annotator
from pipeline.annotate.fingerprint import settings_key
from pipeline.annotate.prompts import PromptSettings
from pipeline.config import build_config
from pipeline.core.errors import ConfigError
from pipeline.run import stage_settings
from tests.pipeline.annotate.toy import toy_settings


def _config(tmp_path, **model):
    return build_config({"input": str(tmp_path), "output": str(tmp_path / "out"), "model": model})


def test_the_config_sets_how_often_stops_are_checked_and_fingerprints_stay(tmp_path):
    _, every_16 = stage_settings(_config(tmp_path, stop_check_every=16), "r")
    _, default = stage_settings(_config(tmp_path), "r")
    assert (every_16.stop_check_every, default.stop_check_every) == (16, 8)
    assert settings_key(every_16) == settings_key(default)


def test_a_stop_check_every_below_one_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.stop_check_every"):
        _config(tmp_path, stop_check_every=0)


def test_the_annotator_generates_with_the_configured_check():
    annotator = Annotator(toy_settings("r", PromptSettings(), stop_check_every=32))
    assert annotator._caption_settings.stop_check_every == 32
    assert annotator._tag_settings.stop_check_every == 32
