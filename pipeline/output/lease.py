"""The lease: one live writer per run id."""

from __future__ import annotations

import json
import os
import posixpath
import secrets
import socket
import threading
from datetime import datetime, timedelta
from typing import Any

from pipeline.core.errors import RunLocked
from pipeline.core.storage import StorageOptions, filesystem, is_remote, join, strip_scheme
from pipeline.output.layout import (
    LEASE_DIR,
    RUNS_DIR,
)
from pipeline.output.store import _atomic_text, _create_exclusive, _utcnow


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLease:
    """Exclusive right to write one run id, as generation objects `_lease/NNNNNNNN.json`."""

    def __init__(
        self, output: str, run_id: str, options: StorageOptions | None = None, ttl_s: float = 600
    ) -> None:
        self.output, self.run_id, self.ttl_s = output, run_id, ttl_s
        self.fs = filesystem(output, options)
        self.remote = is_remote(output)
        self.dir = strip_scheme(join(output, RUNS_DIR, run_id, LEASE_DIR))
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.generation: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _generations(self) -> list[int]:
        if hasattr(self.fs, "invalidate_cache"):
            self.fs.invalidate_cache(self.dir)
        try:
            names = self.fs.ls(self.dir, detail=False)
        except FileNotFoundError:
            return []
        gens = []
        for name in names:
            stem = posixpath.basename(name.rstrip("/")).removesuffix(".json")
            if stem.isdigit():
                gens.append(int(stem))
        return sorted(gens)

    def _path(self, gen: int) -> str:
        return f"{self.dir}/{gen:08d}.json"

    def _body(self, released: bool = False) -> str:
        now = _utcnow()
        return json.dumps(
            {
                "owner": self.owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "acquired_at": now.isoformat(),
                "expires_at": (now + timedelta(seconds=self.ttl_s)).isoformat(),
                "released": released,
            }
        )

    def _read(self, gen: int) -> dict[str, Any] | None:
        try:
            with self.fs.open(self._path(gen), "r") as fh:
                return json.load(fh)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    @staticmethod
    def _stale(holder: dict[str, Any] | None) -> bool:
        if holder is None or holder.get("released"):
            return True
        if datetime.fromisoformat(holder["expires_at"]) < _utcnow():
            return True
        same_host = holder.get("host") == socket.gethostname()
        return same_host and not _pid_alive(int(holder.get("pid", -1)))

    def acquire(self) -> None:
        """Take the lease or raise `RunLocked` naming the live holder."""
        for _ in range(5):
            gens = self._generations()
            gen = gens[-1] + 1 if gens else 0
            if gens:
                holder = self._read(gens[-1])
                if not self._stale(holder):
                    assert holder is not None
                    raise RunLocked(
                        f"run {self.run_id!r} in {self.output} is being written by "
                        f"{holder['host']} pid {holder['pid']} (lease until "
                        f"{holder['expires_at']}); a second writer would corrupt it. Wait for "
                        "it to finish, or use another run id."
                    )
            created = _create_exclusive(self.fs, self._path(gen), self._body(), remote=self.remote)
            # a create whose response was lost is retried and refused: it is still ours
            if created or (self._read(gen) or {}).get("owner") == self.owner:
                self.generation = gen
                self._start_heartbeat()
                return
        raise RunLocked(f"run {self.run_id!r}: lost the race for its lease five times")

    def check(self) -> None:
        """Raise `RunLocked` if someone took the lease over (we were presumed dead)."""
        gens = self._generations()
        if self.generation is None or (gens and gens[-1] != self.generation):
            raise RunLocked(f"run {self.run_id!r}: the lease was taken over by another writer")

    def renew(self) -> None:
        self.check()
        _atomic_text(self.fs, self._path(self.generation), self._body(), remote=self.remote)

    def _start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(max(self.ttl_s / 3, 0.5)):
                try:
                    self.renew()
                except Exception:  # the next check() on the committing path reports it
                    return

        self._thread = threading.Thread(target=beat, name="clipnote-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.generation is not None:
            body = self._body(released=True)
            _atomic_text(self.fs, self._path(self.generation), body, remote=self.remote)
            self.generation = None
