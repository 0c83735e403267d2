"""`clipnote submit`: run a captioning job on a Ray cluster through Ray Jobs.

What is uploaded is an allow-list, never a folder as it happens to be: the Python files of the
project's own packages (`model`, `pipeline`, `jobs`), the shipped toy checkpoint, the example
configs, and `pyproject.toml` / the lock when they sit beside the packages. They are copied
from wherever the packages are imported from, so a source checkout and a non-editable install
upload the same thing, and a `.env`, `~/.aws`, SSH key, virtualenv or video folder lying in
the project is never shipped. The job runs `python -m jobs.caption` there (`--nightly`:
`python -m jobs.nightly`).

The run config is validated here and travels inside the job's environment, so a bad config
never reaches the cluster; the checks of model, input and output run in the job, with the
cluster's credentials (the client may have none). Authentication is Ray's own: with
`RAY_AUTH_MODE=token` the client sends the cluster's token (`RAY_AUTH_TOKEN` or
`~/.ray/auth_token`); it is never turned off.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TextIO

from pipeline.config import RunConfig
from pipeline.core.errors import AccessDenied, ConfigError, Unreachable

CONFIG_ENV = "CLIPNOTE_RUN_CONFIG"
PACKAGES = ("model", "pipeline", "jobs")
UPLOAD_ALLOW: dict[str, tuple[str, ...]] = {
    "model": ("**/*.py", "toy/checkpoint/*.json", "toy/checkpoint/*.safetensors"),
    "pipeline": ("**/*.py",),
    "jobs": ("**/*.py", "configs/*.yaml"),
}
"""Per package, the only files uploaded (globs relative to the package folder)."""
ROOT_FILES = ("pyproject.toml", "requirements/lock.txt")
"""Project files uploaded when they sit beside the packages (a source checkout)."""


def package_dir(name: str) -> Path:
    """Where package `name` is imported from (a checkout or site-packages)."""
    module = importlib.import_module(name)
    return Path(module.__file__).resolve().parent


def _allowed_files(folder: Path, patterns: tuple[str, ...]) -> Iterator[Path]:
    """Regular files matching `patterns`, outside hidden folders and caches, not symlinks."""
    for pattern in patterns:
        for path in sorted(folder.glob(pattern)):
            parts = path.relative_to(folder).parts
            hidden = any(p.startswith(".") or p == "__pycache__" for p in parts)
            if not hidden and path.is_file() and not path.is_symlink():
                yield path


def stage_working_dir(dest: Path, packages: dict[str, Path] | None = None) -> list[str]:
    """Copy the allow-listed files into `dest`; returns their relative paths, sorted."""
    packages = packages or {name: package_dir(name) for name in PACKAGES}
    copied: set[str] = set()
    for name, folder in packages.items():
        for path in _allowed_files(folder, UPLOAD_ALLOW[name]):
            relative = Path(name) / path.relative_to(folder)
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            copied.add(relative.as_posix())
    root = {folder.parent for folder in packages.values()}
    if len(root) == 1:
        (project,) = root
        for name in ROOT_FILES:
            source = project / name
            if source.is_file() and not source.is_symlink():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, dest / name)
                copied.add(name)
    return sorted(copied)


def entrypoint(nightly: bool = False, day: date | None = None) -> str:
    """The job's command: a captioning run, or a night (`jobs.nightly`, resumable)."""
    if not nightly:
        return f"python -m jobs.caption --config-env {CONFIG_ENV}"
    night = f" --date {day.isoformat()}" if day else ""
    return f"python -m jobs.nightly --config-env {CONFIG_ENV}{night}"


def job_spec(config: RunConfig, working_dir: Path, command: str | None = None) -> dict:
    """Entrypoint and runtime environment of the Ray Job for `config`."""
    return {
        "entrypoint": command or entrypoint(),
        "runtime_env": {
            "working_dir": str(working_dir),
            "env_vars": {CONFIG_ENV: json.dumps(config.model_dump(mode="json"))},
        },
    }


def _client(address: str):
    from ray.job_submission import JobSubmissionClient

    if not address:
        raise ConfigError(
            "--address is required: the Ray dashboard of the cluster, e.g. "
            "--address http://HEAD:8265 (for a local run use `clipnote run`)"
        )
    try:
        return JobSubmissionClient(address)
    except Exception as err:
        from ray.exceptions import AuthenticationError

        if isinstance(err, AuthenticationError):
            raise AccessDenied(token_advice(address, dict(os.environ), Path.home())) from None
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise Unreachable(f"cannot reach the Ray dashboard at {address}: {first}") from None


def token_advice(address: str, env: dict[str, str], home: Path) -> str:
    """What to do about a refused token, fix first, from what this machine has (never from the
    wording of Ray's refusal): auth mode off, no token here, or a token the cluster refuses."""
    found = _token_source(env, home)
    if env.get("RAY_AUTH_MODE", "").lower() != "token":
        where = f"the token in {found} will then be sent" if found else (
            "and put the cluster's token in ~/.ray/auth_token or RAY_AUTH_TOKEN"
        )  # fmt: skip
        return f"set RAY_AUTH_MODE=token: {where} (the cluster at {address} uses token auth)"
    if found is None:
        return (
            f"put the cluster's token in ~/.ray/auth_token or RAY_AUTH_TOKEN: the cluster at "
            f"{address} uses token authentication and this machine has no token"
        )
    return (
        f"use the cluster's token: the cluster at {address} refused the one in {found} "
        "(token authentication; copy the head's ~/.ray/auth_token)"
    )


def _token_source(env: dict[str, str], home: Path) -> str | None:
    """Where Ray's client would take a token from, in its order, or None."""
    if env.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    for path in (env.get("RAY_AUTH_TOKEN_PATH"), str(home / ".ray" / "auth_token")):
        if path and Path(path).is_file():
            return path
    return None


NO_AGENT = "No available agent"
"""What Ray's dashboard answers (HTTP 500) when the head's dashboard agent is not running: the
only sign of it a client gets, so it is recognised in the response text (Ray's, not ours)."""


@contextlib.contextmanager
def _quiet_ray_client(verbose: bool) -> Iterator[None]:
    """Ray's client logs every upload step at INFO on stderr; they are for `--verbose` only.
    Its modules set their own loggers to INFO, so the handler Ray installs is what is raised."""
    handlers = [] if verbose else logging.getLogger("ray").handlers
    levels = [handler.level for handler in handlers]
    for handler in handlers:
        handler.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for handler, level in zip(handlers, levels, strict=True):
            handler.setLevel(level)


def submit_run(
    address: str, config: RunConfig, command: str | None = None, *, verbose: bool = False
) -> str:
    """Submit; returns the Ray job id."""
    client = _client(address)
    with (
        _quiet_ray_client(verbose),
        tempfile.TemporaryDirectory(prefix="clipnote-upload-") as folder,
    ):
        stage_working_dir(Path(folder))
        spec = job_spec(config, Path(folder), command)
        try:
            return client.submit_job(entrypoint=spec["entrypoint"], runtime_env=spec["runtime_env"])
        except RuntimeError as err:
            if NO_AGENT not in str(err):
                raise
            raise Unreachable(
                f"start the Ray head with a free --dashboard-agent-listen-port: the head at "
                f"{address} has no job agent running (its default port 52365 is often taken by "
                "another Ray on the machine; README, 'A Ray head of your own')"
            ) from None


def follow_job(address: str, job_id: str, out: TextIO, poll_s: float = 2.0) -> str:
    """Copy the job's log to `out` until the job ends; returns its final status."""
    client = _client(address)
    printed = 0
    while True:
        status = client.get_job_status(job_id)
        logs = client.get_job_logs(job_id)
        if len(logs) > printed:
            out.write(logs[printed:])
            out.flush()
            printed = len(logs)
        if status.is_terminal():
            return str(status.value if hasattr(status, "value") else status)
        time.sleep(poll_s)
