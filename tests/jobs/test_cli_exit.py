"""The CLI's way out: it leaves Ray after the command, and a failure to leave never changes
the command's exit status or prints a traceback over its output."""

from __future__ import annotations

import pytest

import jobs.cli
import jobs.ray_session


def _command_exiting(code: int):
    def app() -> None:
        raise SystemExit(code)

    return app


def test_a_failure_to_leave_ray_is_one_warning_and_keeps_the_exit_status(monkeypatch, capsys):
    import ray  # noqa: F401 - as after a command that used Ray

    def leave() -> None:
        raise RuntimeError("raylet went away")

    monkeypatch.setattr(jobs.cli, "app", _command_exiting(3))
    monkeypatch.setattr(jobs.ray_session, "leave", leave)
    with pytest.raises(SystemExit) as exited:
        jobs.cli.main()
    assert exited.value.code == 3
    assert capsys.readouterr().err == "clipnote: warning: leaving Ray: raylet went away\n"


def test_the_cli_leaves_ray_after_every_command(monkeypatch):
    import ray  # noqa: F401

    left: list[bool] = []
    monkeypatch.setattr(jobs.cli, "app", _command_exiting(0))
    monkeypatch.setattr(jobs.ray_session, "leave", lambda: left.append(True))
    with pytest.raises(SystemExit):
        jobs.cli.main()
    assert left == [True]
