"""Preflight: each storage failure becomes the error class (and so the exit code) the README
promises, with the same one-line message as before the hierarchy. The slow end-to-end
versions against a real S3 server are in tests/jobs/test_cli_errors.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import build_config
from pipeline.core.errors import (
    AccessDenied,
    CheckpointUnusable,
    EnvironmentFailure,
    LocationNotFound,
    NotWritable,
    Unreachable,
)
from pipeline.core.storage import StorageOptions
from pipeline.preflight import check_input, check_model, check_output, storage_problem

URI = "s3://b/p"
OPTIONS = StorageOptions(endpoint_url="http://127.0.0.1:9")


class _ClientError(Exception):
    """What botocore raises: the S3 error code in `response`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


def _denied() -> PermissionError:
    err = PermissionError("denied")
    err.__cause__ = _ClientError("AccessDenied")
    return err


CASES = [
    (
        type("NoCredentialsError", (Exception,), {})(),
        AccessDenied,
        1,
        "input: no S3 credentials found for s3://b/p: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use an instance role",
    ),
    (
        ConnectionRefusedError(111, "Connection refused"),
        Unreachable,
        1,
        "input: cannot reach the S3 endpoint http://127.0.0.1:9 for s3://b/p: check "
        "storage.endpoint_url and that the server is up",
    ),
    (
        _ClientError("SignatureDoesNotMatch"),
        AccessDenied,
        1,
        "input: the S3 server at http://127.0.0.1:9 rejected the credentials "
        "(SignatureDoesNotMatch) for s3://b/p: check AWS_ACCESS_KEY_ID / "
        "AWS_SECRET_ACCESS_KEY or AWS_PROFILE",
    ),
    (
        _denied(),
        AccessDenied,
        1,
        "input: access denied to s3://b/p (AccessDenied): these credentials may not use this "
        "bucket or prefix",
    ),
    (
        FileNotFoundError(2, "No such file"),
        LocationNotFound,
        2,
        "input: nothing at s3://b/p (no such bucket or object)",
    ),
    (
        OSError(5, "Input/output error"),
        EnvironmentFailure,
        1,
        "input: cannot use s3://b/p: Input/output error",
    ),
]


@pytest.mark.parametrize(("exc", "cls", "code", "message"), CASES)
def test_storage_failures_become_their_class_and_message(exc, cls, code, message) -> None:
    problem = storage_problem(exc, "input", URI, OPTIONS)
    assert type(problem) is cls
    assert problem.exit_code == code
    assert str(problem) == message


def test_local_checks_name_the_field(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    missing = build_config({"input": str(tmp_path / "nowhere"), "output": str(tmp_path / "o")})
    with pytest.raises(LocationNotFound) as err:
        check_input(missing)
    assert str(err.value) == (
        f"input: nothing at {tmp_path / 'nowhere'}: give a folder, video, .tar shard or manifest"
    )
    blocked = build_config({"input": str(tmp_path), "output": str(tmp_path / "a-file" / "o")})
    with pytest.raises(NotWritable, match=r"^output: cannot write to .*a-file/o: "):
        check_output(blocked)
    empty = tmp_path / "ckpt"
    empty.mkdir()
    no_model = build_config(
        {"input": str(tmp_path), "output": str(tmp_path / "o"), "model": {"source": str(empty)}}
    )
    with pytest.raises(CheckpointUnusable) as err:
        check_model(no_model)
    assert str(err.value) == (
        f"model.source: {empty} has no config.json: point --model (or model.source) at a "
        "TinyLLaVA-Video checkpoint folder or s3:// prefix, or use 'toy'"
    )
    assert err.value.exit_code == 2
