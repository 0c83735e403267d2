"""The lease: one live writer per run id."""

from __future__ import annotations

import json
import os
import posixpath
import secrets
import socket
import threading
from datetime import timedelta

from pipeline.core.errors import CommitError, RunLocked
from pipeline.core.storage import StorageOptions, filesystem, is_remote, join, strip_scheme
from pipeline.output.layout import LEASE_DIR, RUNS_DIR
from pipeline.output.records import LeaseBody
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

    def _body(self, released: bool = False) -> LeaseBody:
        """This writer's claim, valid `ttl_s` from now (renewed by the heartbeat)."""
        now = _utcnow()
        expires = now + timedelta(seconds=self.ttl_s)
        return LeaseBody(self.owner, socket.gethostname(), os.getpid(), expires, now, released)

    def _write(self, gen: int, body: LeaseBody) -> None:
        _atomic_text(self.fs, self._path(gen), body.to_json(), remote=self.remote)

    def _read(self, gen: int) -> LeaseBody | None:
        try:
            with self.fs.open(self._path(gen), "r") as fh:
                return LeaseBody.from_json(fh.read())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    @staticmethod
    def _stale(holder: LeaseBody | None) -> bool:
        if holder is None or holder.released:
            return True
        if holder.expires_at < _utcnow():
            return True
        return holder.host == socket.gethostname() and not _pid_alive(holder.pid)

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
                        f"{holder.host} pid {holder.pid} (lease until "
                        f"{holder.expires_at.isoformat()}); a second writer would corrupt it. "
                        "Wait for it to finish, or use another run id."
                    )
            body = self._body().to_json()
            try:
                created = _create_exclusive(self.fs, self._path(gen), body, remote=self.remote)
            except OSError as err:  # a full or read-only disk: say where, not just the errno
                raise CommitError(
                    f"could not take the lease of run {self.run_id!r} at {self._path(gen)}: "
                    f"{type(err).__name__}: {err}"
                ) from err
            # a create whose response was lost is retried and refused: it is still ours
            if created or self._owned(gen):
                self.generation = gen
                self._start_heartbeat()
                return
        raise RunLocked(f"run {self.run_id!r}: lost the race for its lease five times")

    def _owned(self, gen: int) -> bool:
        holder = self._read(gen)
        return holder is not None and holder.owner == self.owner

    def check(self) -> None:
        """Raise `RunLocked` if someone took the lease over (we were presumed dead)."""
        gens = self._generations()
        if self.generation is None or (gens and gens[-1] != self.generation):
            raise RunLocked(f"run {self.run_id!r}: the lease was taken over by another writer")

    def renew(self) -> None:
        self.check()
        assert self.generation is not None
        self._write(self.generation, self._body())

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
            self._write(self.generation, self._body(released=True))
            self.generation = None
