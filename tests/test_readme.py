"""README's two set-up commands are what CI runs, character for character.

A green CI once proved nothing because CI installed another way than README said; this keeps
`.ci/run` running README's commands verbatim (the lock, the pinned torch, the venv).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    block = re.search(r"## Set-up: two commands.*?```bash\n(.*?)```", _readme(), re.DOTALL)
    assert block, "README has no set-up code block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def _readme() -> str:
    return (ROOT / "README.md").read_text()


def test_readme_has_two_commands_both_run_verbatim_by_ci() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert command in ci, f"CI does not run README's command: {command}"
    assert commands[0].endswith("&& clipnote demo")
    # the tests on every core, up to 4 (pytest-xdist), a test file per worker
    assert commands[1].endswith("&& python -m pytest -q -n auto --maxprocesses 4 --dist loadfile")


def test_both_commands_install_from_the_lock_with_torch_first() -> None:
    for command in _readme_commands():
        steps = [step.strip() for step in command.split("&&")]
        assert steps[:3] == ["python3 -m venv .venv", ". .venv/bin/activate",
                             "pip install torch==2.13.0"]  # fmt: skip
        assert steps[3].startswith("pip install -c requirements/lock.txt -e ")


def test_lock_pins_every_dependency_exactly_and_torch_as_readme_says() -> None:
    lines = (ROOT / "requirements" / "lock.txt").read_text().splitlines()
    pins = [line.split(";")[0].strip() for line in lines if line and line[0] not in "# "]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\[\],-]+==[^=\s]+", pin) for pin in pins), [
        pin for pin in pins if "==" not in pin
    ]
    names = {pin.split("==")[0].lower() for pin in pins}
    for needed in ("ray", "torch", "transformers", "pyarrow", "decord", "boto3", "botocore",
                   "s3fs", "aiobotocore", "pytest", "moto"):  # fmt: skip
        assert needed in names, needed
    assert "torch==2.13.0" in pins
