"""What the command line says about an error, and with which exit code: decided by the
error's type, never by its text (2: the request is wrong; 1: the world refused; 1 and
"unexpected error" for a bug)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jobs.errors import exit_code, explain
from jobs.query import QueryError
from pipeline.annotate.device import GpuUnusable, NoGpuHere
from pipeline.core.errors import (
    AccessDenied,
    BadRequest,
    CheckpointUnusable,
    ClipnoteError,
    CommitError,
    ConfigError,
    EnvironmentFailure,
    InputNotFound,
    InputUnreadable,
    InputUnsupported,
    LocationNotFound,
    NotWritable,
    RunLocked,
    SourceError,
    Unreachable,
)

ROOT = Path(__file__).resolve().parents[2]

DOCUMENTED = {
    # 2: the request is wrong (config, input, checkpoint, SQL)
    BadRequest: 2,
    ConfigError: 2,
    LocationNotFound: 2,
    CheckpointUnusable: 2,
    InputNotFound: 2,
    InputUnsupported: 2,
    QueryError: 2,
    # 1: the world refused (unreachable, denied, not writable, run locked)
    ClipnoteError: 1,
    EnvironmentFailure: 1,
    Unreachable: 1,
    AccessDenied: 1,
    NotWritable: 1,
    CommitError: 1,
    RunLocked: 1,
    SourceError: 1,
    InputUnreadable: 1,
    GpuUnusable: 1,  # an actor given a GPU that cannot use CUDA
    NoGpuHere: 1,  # a run that wants a GPU on a local Ray without one
}


def _all_subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _all_subclasses(sub)
    return found


@pytest.mark.parametrize(
    ("cls", "code"), DOCUMENTED.items(), ids=lambda v: getattr(v, "__name__", v)
)
def test_every_user_facing_error_has_its_documented_exit_code(cls: type, code: int) -> None:
    message, got = explain(cls("something is off"))
    assert got == code
    input_error = issubclass(cls, SourceError)
    assert message == ("input: something is off" if input_error else "something is off")


def test_no_error_class_lacks_a_documented_code() -> None:
    """A new class must be added to the table above (and to the docs) on purpose."""
    project = ("pipeline.", "jobs.")
    ours = {c for c in _all_subclasses(ClipnoteError) if c.__module__.startswith(project)}
    assert ours | {ClipnoteError} == set(DOCUMENTED)


def test_the_code_comes_from_the_type_not_the_text() -> None:
    """The messages here say the opposite of their class: the class wins. Before, an input
    error was exit 2 exactly when its text contained "not found" or "unsupported"."""

    class Vanished(InputNotFound):
        pass

    assert explain(Vanished("the bucket is empty today")) == (
        "input: the bucket is empty today",
        2,
    )
    assert explain(InputUnreadable("object not found: s3://b/a.mp4 (I/O error)"))[1] == 1
    assert explain(InputUnsupported("cannot read this"))[1] == 2
    assert explain(Unreachable("not found: the route to the host"))[1] == 1


def test_the_models_own_errors_are_mapped_by_type() -> None:
    from model.checkpoint import CheckpointError
    from model.configuration import ConfigError as ModelConfigError
    from model.remote import FetchError

    assert explain(CheckpointError("/ckpt: no config.json")) == ("/ckpt: no config.json", 2)
    assert explain(ModelConfigError("config.json: missing required field 'x'"))[1] == 2
    assert explain(FetchError("s3://m/ckpt: no such prefix")) == ("s3://m/ckpt: no such prefix", 1)


def test_anything_else_is_a_bug_in_one_line() -> None:
    message, code = explain(KeyError("run_id"))
    assert code == 1
    assert message == ("unexpected error: KeyError: 'run_id' (run with --debug for the traceback)")
    assert explain(ValueError("not found"))[1] == 1  # no exit 2 by its wording


def test_exit_code_prints_one_line_and_returns_the_code(capsys) -> None:
    def work() -> None:
        raise InputNotFound("input not found: /nowhere")

    assert exit_code(work) == 2
    assert capsys.readouterr().err == "clipnote: input: input not found: /nowhere\n"
    assert exit_code(lambda: None) == 0
    with pytest.raises(InputNotFound):
        exit_code(work, debug=True)


def test_explaining_a_config_mistake_does_not_import_torch() -> None:
    """Explaining a typo must not cost the seconds torch takes to import (the model's error
    classes are only looked up once their modules are loaded)."""
    code = (
        "import sys; from jobs.errors import explain; "
        "from pipeline.core.errors import ConfigError; "
        "assert explain(ConfigError('clips.length_s: bad')) == ('clips.length_s: bad', 2); "
        "assert explain(KeyError('x'))[1] == 1; "
        "print('torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
