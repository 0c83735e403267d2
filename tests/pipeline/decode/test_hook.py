"""The decode child's test seam: inert unless its environment variable names a function."""

from __future__ import annotations

import pytest

from pipeline.core.records import VideoRef
from pipeline.decode.hook import DECODE_HOOK_ENV, run_decode_hook

REF = VideoRef(uri="/data/v.mp4", size=3, version="1")


def test_unset_it_does_nothing(monkeypatch, capsys) -> None:
    monkeypatch.delenv(DECODE_HOOK_ENV, raising=False)
    run_decode_hook(REF)
    monkeypatch.setenv(DECODE_HOOK_ENV, "")
    run_decode_hook(REF)
    assert capsys.readouterr().out == ""


def test_it_calls_the_named_function_with_the_ref(monkeypatch, capsys) -> None:
    monkeypatch.setenv(DECODE_HOOK_ENV, "builtins:print")
    run_decode_hook(REF)
    assert capsys.readouterr().out == f"{REF!r}\n"


@pytest.mark.parametrize("spec", ["builtins.print", "builtins:", ":print"])
def test_a_malformed_name_is_an_error_that_names_the_variable(monkeypatch, spec: str) -> None:
    monkeypatch.setenv(DECODE_HOOK_ENV, spec)
    with pytest.raises(ValueError, match=f"^CLIPNOTE_DECODE_HOOK='{spec}': expected"):
        run_decode_hook(REF)
