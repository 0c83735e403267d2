"""The three ways the output is written: a whole object, a record that replaces itself
atomically, and a create-if-absent (the lease).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import secrets
from datetime import datetime, timezone
from typing import Any

from pipeline.core.storage import strip_scheme


def _put_bytes(fs: Any, uri: str, data: bytes, *, remote: bool) -> None:
    path = strip_scheme(uri)
    if not remote:
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
    with fs.open(path, "wb") as fh:
        fh.write(data)


def _create_exclusive(fs: Any, path: str, text: str, *, remote: bool) -> bool:
    """Create `path` with `text` only if absent, the name and its content appearing together
    (S3: If-None-Match: *; local: a hard link from a complete temporary file, which fails if
    the name exists). False if present. A local `open(path, "x")` made an empty file first:
    a rival that read it in that moment took it for stale and won too."""
    if remote:
        bucket, _, key = path.partition("/")
        try:
            fs.call_s3("put_object", Bucket=bucket, Key=key, Body=text.encode(), IfNoneMatch="*")
        except FileExistsError:
            return False
        return True
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"
    try:
        _write_synced(tmp, text)
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return True


def _write_synced(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _atomic_text(fs: Any, uri: str, text: str, *, remote: bool) -> None:
    """An S3 PUT is atomic; a local file is written aside and renamed into place."""
    path = strip_scheme(uri)
    if remote:
        with fs.open(path, "w") as fh:
            fh.write(text)
        return
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"
    try:
        _write_synced(tmp, text)
        os.replace(tmp, path)
    finally:  # a full disk leaves no half-written temporary file behind
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)
