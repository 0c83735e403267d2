"""The error hierarchy: the class alone carries the exit code, and every error crosses a
process boundary (Ray, the decode child) as itself."""

from __future__ import annotations

import pickle

import pytest

from pipeline.core import errors
from pipeline.core.errors import (
    ClipnoteError,
    CommitError,
    ConfigError,
    InputNotFound,
    InputUnreadable,
    SourceError,
)


def _all_subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _all_subclasses(sub)
    return found


CLASSES = sorted(
    (v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, ClipnoteError)),
    key=lambda cls: cls.__name__,
)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_pickles_as_itself(cls: type[ClipnoteError]) -> None:
    """Ray ships a worker's error to the driver by pickling it: a class whose constructor
    wanted more than the message would arrive as something else."""
    back = pickle.loads(pickle.dumps(cls("s3://b/x: no such key")))
    assert type(back) is cls and str(back) == "s3://b/x: no such key"
    assert back.exit_code == cls.exit_code


def test_input_errors_are_source_errors_shown_as_input() -> None:
    for cls in (InputNotFound, InputUnreadable):
        err = cls("object not found: /v.mp4")
        assert isinstance(err, SourceError) and isinstance(err, RuntimeError)
        assert err.user_message() == "input: object not found: /v.mp4"
    assert ConfigError("clips.length_s: bad").user_message() == "clips.length_s: bad"


def test_old_except_clauses_still_catch() -> None:
    """Callers wrote `except ValueError` around config parsing and `except RuntimeError`
    around commits before the hierarchy existed."""
    assert issubclass(ConfigError, ValueError)
    assert issubclass(CommitError, RuntimeError)


def test_every_class_of_the_module_is_in_the_hierarchy() -> None:
    """A new error class defined outside `ClipnoteError` would get no exit code."""
    defined = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and value.__module__ == errors.__name__
    }
    assert defined == {ClipnoteError} | (_all_subclasses(ClipnoteError) & defined)
