"""The `clipnote` CLI as a user runs it: a fresh interpreter, this checkout's code, no Ray or
AWS settings inherited from the test process; or the same commands in this interpreter, for
tests whose point is what a command does rather than the process around it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Commands that join or start a Ray cluster (`jobs.ray_session.connect`).
_RAY_COMMANDS = frozenset({"run", "nightly", "retry", "demo", "plan"})


def run_clipnote(
    *args: str, cwd: Path, columns: int = 120, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_"))}
    base.update(PYTHONPATH=str(ROOT), COLUMNS=str(columns), RAY_USAGE_STATS_ENABLED="0")
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli", *args],
        cwd=cwd, env=base, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@dataclass
class Ran:
    """What `clipnote_here` saw: the fields of `subprocess.CompletedProcess` the tests read."""

    returncode: int
    stdout: str
    stderr: str


def clipnote_here(*args: str, cwd: Path, columns: int = 250, **env: str) -> Ran:
    """`clipnote ARGS` run in this interpreter from `cwd`, through the same Typer app.

    Why: a fresh interpreter costs an import of torch, pyarrow and Ray and, for a run, a Ray
    start and stop and cold workers (about 10 s a run on 2 cores). A run here joins the
    session's Ray (`ray_session`), whose idle workers are warm. Use it where the process
    boundary is not the point; `run_clipnote` and tests/jobs/test_cli_local_run.py keep the
    real process (its own Ray, loopback sockets, stderr filtering). A run needs the
    `ray_session` fixture: started here, the CLI would filter this process's stderr."""
    from typer.testing import CliRunner

    from jobs import cli

    command = next((a for a in args if not a.startswith("-")), "")
    if command in _RAY_COMMANDS:
        import ray

        from jobs.ray_session import _quiet_ray

        assert ray.is_initialized(), "clipnote_here runs join `ray_session`: request it"
        _quiet_ray()  # as the CLI's `connect` does once its own Ray is up (it skips a joined one)
    widths = cli.console.width, cli.err_console.width
    cli.console.width = cli.err_console.width = columns  # made at import: COLUMNS is too late
    before = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli.app, list(args), env={"COLUMNS": str(columns), **env})
    finally:
        os.chdir(before)
        cli.console.width, cli.err_console.width = widths
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a crash of the CLI itself, not an exit code: show it whole
    return Ran(result.exit_code, result.stdout, result.stderr)
