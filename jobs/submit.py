"""`clipnote submit`: run a captioning job on a Ray cluster through Ray Jobs.

The project directory is uploaded as the job's `working_dir` and the job runs
`python -m jobs.caption` there. The run config is validated here and travels inside the
job's environment, so a bad config never reaches the cluster. Authentication is Ray's own:
with `RAY_AUTH_MODE=token` the client sends the cluster's token (`RAY_AUTH_TOKEN` or
`~/.ray/auth_token`); it is never turned off.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import RunConfig

CONFIG_ENV = "CLIPNOTE_RUN_CONFIG"
UPLOAD_EXCLUDES = [
    ".git", "**/__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache",
    "tests/fixtures", "clipnote-demo", "benchmarks/results",
]  # fmt: skip


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def job_spec(config: RunConfig) -> dict:
    """Entrypoint and runtime environment of the Ray Job for `config`."""
    return {
        "entrypoint": f"python -m jobs.caption --config-env {CONFIG_ENV}",
        "runtime_env": {
            "working_dir": str(project_root()),
            "excludes": UPLOAD_EXCLUDES,
            "env_vars": {CONFIG_ENV: json.dumps(config.model_dump(mode="json"))},
        },
    }


def submit_run(address: str, config: RunConfig) -> str:
    """Submit; returns the Ray job id."""
    from ray.job_submission import JobSubmissionClient

    if not address:
        raise ValueError("--address is required, e.g. http://HEAD:8265")
    client = JobSubmissionClient(address)
    spec = job_spec(config)
    return client.submit_job(entrypoint=spec["entrypoint"], runtime_env=spec["runtime_env"])
