"""Mistakes a user can make, through the real `clipnote` process: one line, exit 2 or 1.

2 = the request is wrong (missing checkpoint or input, bad config); 1 = the environment
refused (unreachable endpoint or Ray cluster, denied bucket, wrong credentials, output not
writable). Credentials and bucket permissions are enforced by a real SeaweedFS S3 server
started with identities (moto accepts any key). Each case was a multi-line traceback (or a
minute-long hang, for the Ray address) before the preflight checks.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.jobs.cli_process import Ran, clipnote_here, run_clipnote
from tests.seaweedfs import SeaweedServer, seaweedfs

pytestmark = pytest.mark.slow  # a fresh interpreter (torch, pyarrow) per case

READER = ("clipnote-reader", "clipnote-reader-secret")


@pytest.fixture(scope="module")
def s3_auth(tmp_path_factory) -> Iterator[SeaweedServer]:
    """`public` readable and listable by READER; `private` by the admin only."""
    reader = {
        "name": "reader",
        "credentials": [{"accessKey": READER[0], "secretKey": READER[1]}],
        "actions": ["Read:public", "List:public"],
    }
    with seaweedfs(tmp_path_factory.mktemp("weed"), [reader]) as server:
        admin = server.client()
        for bucket in ("public", "private"):
            admin.create_bucket(Bucket=bucket)
            admin.put_object(Bucket=bucket, Key="videos/a.mp4", Body=b"not decoded here")
        yield server


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clipnote(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return run_clipnote(*args, cwd=cwd, columns=250, timeout=180, **env)


def _one_line_error(result: subprocess.CompletedProcess | Ran, code: int, *needles: str) -> str:
    assert result.returncode == code, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("clipnote: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture()
def videos(tmp_path: Path) -> Path:
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(b"decoded by the run, never by the checks")
    return folder


def test_missing_checkpoint_exits_2(tmp_path, videos):
    empty = tmp_path / "not-a-checkpoint"
    empty.mkdir()
    result = _clipnote(
        "run", "--input", str(videos), "--output", "out", "--model", str(empty), cwd=tmp_path
    )
    _one_line_error(result, 2, f"model.source: {empty} has no config.json")


def test_missing_input_exits_2(tmp_path):
    result = _clipnote("run", "--input", "nowhere", "--output", "out", cwd=tmp_path)
    _one_line_error(result, 2, f"input: nothing at {tmp_path / 'nowhere'}")


def test_missing_config_file_exits_2(tmp_path):
    result = _clipnote("run", "no-such.yaml", cwd=tmp_path)
    _one_line_error(result, 2, "config: no such file: no-such.yaml")


def test_unreachable_endpoint_exits_1_in_one_line(tmp_path, monkeypatch, ray_session):
    """The same real refused connection as below, through the same CLI, in this interpreter
    with one S3 attempt instead of the shipped ten: the message and exit code do not depend
    on how long the retries took (the shipped policy waits about 85 s, see below). The
    session's Ray is only there so that a regression reaching the run joins it."""
    from model.remote import S3_CLIENT_CONFIG

    monkeypatch.setitem(S3_CLIENT_CONFIG, "retries", {"mode": "standard", "max_attempts": 1})
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    result = clipnote_here(
        "run", "--input", "s3://public/videos", "--output", str(tmp_path / "out"),
        "--set", f"storage.endpoint_url={endpoint}", cwd=tmp_path,
    )  # fmt: skip
    _one_line_error(result, 1, f"input: cannot reach the S3 endpoint {endpoint}")


@pytest.mark.trials  # the shipped retry policy runs out: 10 attempts, about 85 s of backoff
def test_unreachable_endpoint_exits_1(tmp_path):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    result = _clipnote(
        "run", "--input", "s3://public/videos", "--output", str(tmp_path / "out"),
        "--set", f"storage.endpoint_url={endpoint}", cwd=tmp_path,
        AWS_ACCESS_KEY_ID=READER[0], AWS_SECRET_ACCESS_KEY=READER[1],
    )  # fmt: skip
    _one_line_error(result, 1, f"input: cannot reach the S3 endpoint {endpoint}")


def test_denied_bucket_exits_1(tmp_path, s3_auth):
    result = _clipnote(
        "run", "--input", "s3://private/videos", "--output", str(tmp_path / "out"),
        "--set", f"storage.endpoint_url={s3_auth.endpoint}", cwd=tmp_path,
        AWS_ACCESS_KEY_ID=READER[0], AWS_SECRET_ACCESS_KEY=READER[1],
    )  # fmt: skip
    _one_line_error(result, 1, "input: access denied to s3://private/videos (AccessDenied)")


def test_wrong_credentials_exit_1(tmp_path, s3_auth):
    result = _clipnote(
        "run", "--input", "s3://public/videos", "--output", str(tmp_path / "out"),
        "--set", f"storage.endpoint_url={s3_auth.endpoint}", cwd=tmp_path,
        AWS_ACCESS_KEY_ID=READER[0], AWS_SECRET_ACCESS_KEY="not-the-secret",
    )  # fmt: skip
    _one_line_error(result, 1, "rejected the credentials (SignatureDoesNotMatch)")


def test_unwritable_s3_output_exits_1(tmp_path, s3_auth):
    """The reader may list the input but not write to the output bucket."""
    result = _clipnote(
        "run", "--input", "s3://public/videos", "--output", "s3://private/out",
        "--set", f"storage.endpoint_url={s3_auth.endpoint}", cwd=tmp_path,
        AWS_ACCESS_KEY_ID=READER[0], AWS_SECRET_ACCESS_KEY=READER[1],
    )  # fmt: skip
    _one_line_error(result, 1, "output: access denied to s3://private/out")


def test_unwritable_local_output_exits_1(tmp_path, videos):
    (tmp_path / "a-file").write_text("not a folder")
    result = _clipnote("run", "--input", str(videos), "--output", "a-file/out", cwd=tmp_path)
    _one_line_error(result, 1, f"output: cannot write to {tmp_path / 'a-file' / 'out'}")


def test_unreachable_ray_address_exits_1_quickly(tmp_path, videos):
    address = f"127.0.0.1:{_closed_port()}"
    result = _clipnote(
        "run", "--input", str(videos), "--output", "out", cwd=tmp_path, RAY_ADDRESS=address
    )
    _one_line_error(result, 1, f"cannot reach the Ray cluster at RAY_ADDRESS={address}")
    assert not (tmp_path / "out" / "clips").exists()


def test_submit_without_address_exits_2(tmp_path, videos):
    result = _clipnote("submit", "--input", str(videos), "--output", "out", cwd=tmp_path)
    _one_line_error(result, 2, "--address is required")


def test_debug_shows_the_traceback(tmp_path):
    result = _clipnote("--debug", "run", "--input", "nowhere", "--output", "out", cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "LocationNotFound: input: nothing at" in result.stderr
