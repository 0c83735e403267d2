"""`clipnote submit` against a real Ray head started by `ray start --head`, token auth on.

The head runs in its own session (`start_new_session`) with its own `--temp-dir`, HOME and
ports, so it is stopped by signalling exactly the processes of that session: `ray stop` would
kill every Ray on the machine, including a local Ray another test started with `ray.init()`.

Auth as Ray does it: `ray get-auth-token --generate` writes `$HOME/.ray/auth_token`; with
RAY_AUTH_MODE=token `ray start --head` uses it (and refuses to start without one). The client
(`clipnote submit`, a subprocess so this process's Ray auth state is left alone) finds the same
file through HOME; a client without it is rejected by the dashboard.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobs.submit import CONFIG_ENV, job_spec, stage_working_dir
from pipeline.config import build_config
from pipeline.decode.hook import DECODE_HOOK_ENV
from tests.helpers import free_ports

ROOT = Path(__file__).resolve().parents[2]
JOB_TIMEOUT_S = 240
UPLOAD_LIMIT = 16 * 2**20  # now ~0.3 MB zipped; Ray refuses >= 512 MiB (its max gRPC message)


def _ray_cli() -> str:
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")


def _clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This interpreter first on PATH, no inherited RAY_* (address, auth), a private HOME, and
    no test decode hook: the cluster runs the uploaded project, which has no tests/ folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != DECODE_HOOK_ENV}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(home)
    env.update(extra)
    return env


def _session_pids(sid: int) -> list[int]:
    """Live processes of session `sid` (zombies are dead already and only wait to be reaped)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # exited meanwhile
            continue
        state, _ppid, _pgrp, session = stat.rsplit(")", 1)[1].split()[:4]
        if int(session) == sid and state not in ("Z", "X"):
            pids.append(int(entry))
    return pids


def _stop_session(sid: int, grace_s: float = 2.0) -> None:
    """`ray stop --force`, for this head only: SIGTERM its session, SIGKILL what is left.

    gcs_server, raylet and `ray start --block` take ~15 s to exit on SIGTERM; the head holds
    nothing worth a graceful shutdown (output is committed by the job itself), so the grace
    is short.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _session_pids(sid):
            with contextlib.suppress(OSError):  # exited meanwhile
                os.kill(pid, sig)
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 30.0)
        while _session_pids(sid) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert not _session_pids(sid), "processes of the test's Ray head survived SIGKILL"


@dataclass(frozen=True)
class Head:
    address: str
    token: str
    home: Path
    temp_dir: Path

    def client_env(self) -> dict[str, str]:
        return _clean_env(self.home, RAY_AUTH_MODE="token")

    def jobs_client(self):
        from ray.job_submission import JobSubmissionClient

        # Explicit header: this test process's own Ray auth mode/token are not involved.
        return JobSubmissionClient(self.address, headers={"Authorization": f"Bearer {self.token}"})


def _wait_for_jobs_api(head: Head, proc: subprocess.Popen, log: Path) -> None:
    import requests

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"ray start exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            response = requests.get(
                f"{head.address}/api/jobs/",
                headers={"Authorization": f"Bearer {head.token}"},
                timeout=5,
            )
            if response.status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    pytest.fail(f"dashboard did not answer in 120 s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def ray_head() -> Iterator[Head]:
    with _started_head() as head:
        yield head


@contextlib.contextmanager
def _started_head(agent_port: int | None = None) -> Iterator[Head]:
    """A token-auth Ray head of its own (stopped by session id): README's recipe."""
    # Short paths: Ray's unix sockets live under --temp-dir (AF_UNIX paths max ~107 bytes).
    home = Path(tempfile.mkdtemp(prefix="cn-home-", dir="/tmp"))
    temp_dir = Path(tempfile.mkdtemp(prefix="cn-ray-", dir="/tmp"))
    gcs, dashboard, client_server, agent = free_ports(4)
    agent = agent_port or agent
    try:
        generated = subprocess.run(
            [_ray_cli(), "get-auth-token", "--generate"],
            env=_clean_env(home),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        token = (home / ".ray" / "auth_token").read_text().strip()
        assert token and token == generated.stdout.strip()

        command = [_ray_cli(), "start", "--head", "--block", "--num-cpus=2"]
        command += [f"--port={gcs}", f"--dashboard-port={dashboard}"]
        command += [f"--ray-client-server-port={client_server}"]
        command += [f"--dashboard-agent-listen-port={agent}"]
        command += ["--disable-usage-stats", f"--temp-dir={temp_dir}"]
        log = temp_dir / "ray-start.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                command,
                env=_clean_env(home, RAY_AUTH_MODE="token"),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session: stopped by sid, nothing else
                cwd=temp_dir,
            )
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    head = Head(f"http://127.0.0.1:{dashboard}", token, home, temp_dir)
    try:
        _wait_for_jobs_api(head, proc, log)
        yield head
    finally:
        try:  # a head that survives SIGKILL fails the test, after the clean-up below
            _stop_session(proc.pid)
            proc.wait(timeout=30)
        finally:
            shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(temp_dir, ignore_errors=True)


def _submit(
    head: Head, config_path: Path, env: dict[str, str], *extra: str, timeout: float = 180
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli", "submit", str(config_path), "--address", head.address,
         *extra],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _write_config(path: Path, **fields) -> Path:
    path.write_text(json.dumps(fields))  # JSON is YAML
    return path


def _package_bytes(temp_dir: Path) -> tuple[int, list[str]]:
    """Size and top-level names of the working_dir package(s) the head unpacked."""
    pattern = "session_*/runtime_resources/working_dir_files/_ray_pkg_*"
    packages = [p for p in temp_dir.glob(pattern) if p.is_dir()]
    assert packages, "no working_dir package found on the head"
    files = [f for p in packages for f in p.rglob("*") if f.is_file()]
    top = sorted({f.relative_to(p).parts[0] for p in packages for f in p.rglob("*")})
    return sum(f.stat().st_size for f in files), top


def test_job_spec_carries_the_validated_config(tmp_path: Path) -> None:
    config = build_config(
        {"input": "s3://b/in/", "output": "s3://b/out/", "sampling": {"num_frames": 4}}
    )
    spec = job_spec(config, tmp_path)
    assert spec["entrypoint"] == f"python -m jobs.caption --config-env {CONFIG_ENV}"
    runtime_env = spec["runtime_env"]
    assert runtime_env["working_dir"] == str(tmp_path)
    assert build_config(json.loads(runtime_env["env_vars"][CONFIG_ENV])) == config


def test_nightly_jobs_run_jobs_nightly_for_the_night_asked() -> None:
    from datetime import date

    from jobs.submit import entrypoint

    assert entrypoint() == f"python -m jobs.caption --config-env {CONFIG_ENV}"
    assert entrypoint(nightly=True) == f"python -m jobs.nightly --config-env {CONFIG_ENV}"
    assert entrypoint(True, date(2026, 3, 4)) == (
        f"python -m jobs.nightly --config-env {CONFIG_ENV} --date 2026-03-04"
    )


SECRETS = (
    ".env", ".aws/credentials", "id_rsa", ".ssh/id_ed25519", ".venv/lib/site.py",
    "my-videos/holiday.mp4", "my-videos/clip.yaml", "keys.json",
)  # fmt: skip


def _planted_project(root: Path) -> dict[str, Path]:
    """A copy of the project's packages with secrets and data planted around and inside them."""
    for name in ("model", "pipeline", "jobs"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    for folder in (root, root / "pipeline", root / "jobs" / "configs"):
        for secret in SECRETS:
            path = folder / secret
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("SECRET=do-not-upload\n")
    (root / "jobs" / "linked.py").symlink_to(root / ".env")
    return {name: root / name for name in ("model", "pipeline", "jobs")}


def test_upload_is_the_allow_list_only(tmp_path: Path) -> None:
    """Caught: the working_dir was the project folder minus an exclude list, so `.env`,
    `.aws/credentials`, SSH keys, a virtualenv and video folders were zipped and uploaded.
    The zip is made by Ray's own packaging, as `submit_job` makes it."""
    from ray._private.runtime_env.packaging import create_package

    packages = _planted_project(tmp_path / "project")
    staged = tmp_path / "staged"
    copied = stage_working_dir(staged, packages)
    target = tmp_path / "pkg.zip"
    create_package(str(staged), target, include_gitignore=True)
    import zipfile

    names = [n for n in zipfile.ZipFile(target).namelist() if not n.endswith("/")]
    assert sorted(names) == copied
    contents = [(staged / n).read_text(errors="replace") for n in names]
    assert not [n for n, text in zip(names, contents, strict=True) if "do-not-upload" in text]
    assert "jobs/linked.py" not in names
    expected = {
        "pyproject.toml", "jobs/caption.py", "pipeline/run.py", "model/modeling.py",
        "model/toy/checkpoint/model.safetensors", "model/toy/checkpoint/config.json",
        "jobs/configs/toy-local.yaml",
    }  # fmt: skip
    assert expected <= set(names)
    assert all(n.endswith((".py", ".json", ".safetensors", ".yaml", ".toml")) for n in names)
    assert target.stat().st_size < UPLOAD_LIMIT


@pytest.mark.slow
def test_upload_from_a_non_editable_install(tmp_path: Path) -> None:
    """Caught: from a wheel install the project root was site-packages (GBs, over Ray's
    upload limit). The staged folder must hold the same packages, imported from the wheel."""
    wheel_dir, site = tmp_path / "wheel", tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheel_dir), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheel_dir.glob("clipnote-*.whl")
    import zipfile

    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sys, json, pathlib, jobs.submit as s; "
        "files = s.stage_working_dir(pathlib.Path(sys.argv[1])); "
        "print(json.dumps({'files': files, 'from': str(s.package_dir('pipeline'))}))"
    )
    staged = tmp_path / "staged"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    done = subprocess.run(
        [sys.executable, "-c", code, str(staged)], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["from"] == str(site / "pipeline")
    assert (
        "pipeline/run.py" in result["files"]
        and "model/toy/checkpoint/config.json" in result["files"]
    )
    size = sum(f.stat().st_size for f in staged.rglob("*") if f.is_file())
    assert size < UPLOAD_LIMIT


@pytest.mark.slow
def test_submit_runs_a_caption_job(ray_head: Head, tmp_path: Path, tiny_checkpoint: Path) -> None:
    from model.toy.video_io import write_toy_videos
    from pipeline.output.committed import committed_runs, read_committed
    from pipeline.output.layout import RUNS_DIR

    videos = tmp_path / "videos"
    names = {p.name for p, _ in write_toy_videos(videos, seed=11, n=3, num_frames=24, size=64)}
    output = tmp_path / "out"
    config_path = _write_config(
        tmp_path / "run.yaml",
        input=str(videos),
        output=str(output),
        clips={"mode": "whole"},
        sampling={"num_frames": 4},
        model={"source": str(tiny_checkpoint), "max_new_tokens": 8, "tag_max_new_tokens": 8},
        resources={"decode_cpus": 1, "annotate_actors": 1, "gpus_per_actor": 0},
    )

    started = time.monotonic()
    submitted = _submit(
        ray_head, config_path, ray_head.client_env(), "--follow", timeout=JOB_TIMEOUT_S
    )
    match = re.search(r"raysubmit_[A-Za-z0-9]+", submitted.stdout)
    assert match, submitted.stdout + submitted.stderr
    job_id = match.group(0)
    logs = ray_head.jobs_client().get_job_logs(job_id)
    assert submitted.returncode == 0, submitted.stdout[-6000:] + submitted.stderr[-3000:]
    print(f"job {job_id} succeeded in {time.monotonic() - started:.1f} s")
    # --follow streamed the job's own log: its progress line and summary, then the status.
    assert f"job {job_id}: SUCCEEDED" in submitted.stdout
    assert "videos 3/3 done" in submitted.stdout and "clips ok" in submitted.stdout
    assert logs.strip() and logs.strip()[-200:] in submitted.stdout

    records = committed_runs(str(output))
    assert len(records) == 1, logs[-4000:]
    assert list((output / RUNS_DIR).glob("*.json"))
    table = read_committed(str(output))
    rows = table.to_pylist()
    assert {Path(r["video_uri"].split("#")[0]).name for r in rows} == names
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    assert all(len(r["frame_indices"]) == 4 for r in rows)

    size, top = _package_bytes(ray_head.temp_dir)
    print(f"working_dir package on the head: {size / 2**20:.2f} MiB, {top}")
    assert size < UPLOAD_LIMIT
    assert "jobs" in top and "pipeline" in top and "model" in top
    assert set(top) == {"jobs", "pipeline", "model", "pyproject.toml", "requirements"}


@pytest.mark.slow
def test_client_without_the_token_is_rejected(ray_head: Head, tmp_path: Path) -> None:
    import requests
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    before = len(ray_head.jobs_client().list_jobs())
    jobs_url = f"{ray_head.address}/api/jobs/"
    assert requests.get(jobs_url, timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer " + "0" * 64}
    assert requests.get(jobs_url, headers=wrong, timeout=10).status_code == 403
    with pytest.raises(AuthenticationError):
        JobSubmissionClient(ray_head.address, headers=wrong).list_jobs()

    # `clipnote submit` from a machine that has auth on but not the cluster's token.
    (tmp_path / "in").mkdir()
    config_path = _write_config(
        tmp_path / "run.yaml", input=str(tmp_path / "in"), output=str(tmp_path / "out")
    )
    stranger_home = tmp_path / "stranger"
    stranger_home.mkdir()
    result = _submit(ray_head, config_path, _clean_env(stranger_home, RAY_AUTH_MODE="token"))
    assert result.returncode != 0, result.stdout
    assert "token authentication" in result.stdout + result.stderr, result.stderr[-3000:]
    assert len(ray_head.jobs_client().list_jobs()) == before


def test_a_missing_auth_mode_is_one_line_fix_first(ray_head: Head, tmp_path: Path) -> None:
    """The cluster's token lies in ~/.ray/auth_token but RAY_AUTH_MODE is not set: one line
    that starts with the fix and says the token file is there (not "no token was found")."""
    (tmp_path / "in").mkdir()
    config_path = _write_config(
        tmp_path / "run.yaml", input=str(tmp_path / "in"), output=str(tmp_path / "out")
    )
    result = _submit(ray_head, config_path, _clean_env(ray_head.home))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("clipnote: set RAY_AUTH_MODE=token: "), lines[0]
    assert f"{ray_head.home}/.ray/auth_token" in lines[0]


@pytest.mark.slow  # a Ray head of its own
def test_a_head_without_its_job_agent_is_one_line_fix_first(tmp_path: Path) -> None:
    """Another process holds the head's dashboard-agent port (as another Ray on the machine
    does with the default): the head starts without a job agent, and submit says what to do in
    one line instead of "RuntimeError: Request failed with status code 500"."""
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        with _started_head(agent_port=squatter.getsockname()[1]) as head:
            (tmp_path / "in").mkdir()
            config_path = _write_config(
                tmp_path / "run.yaml", input=str(tmp_path / "in"), output=str(tmp_path / "out")
            )
            result = _submit(head, config_path, head.client_env())
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "clipnote: start the Ray head with a free --dashboard-agent-listen-port: "
    ), lines[0]
