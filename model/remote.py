"""Fetching a checkpoint from an `s3://` prefix into a local cache, once per node.

Only data files are fetched (configs, weights, tokenizer files); code files are never
downloaded. The cache directory is keyed by the URI and guarded by a file lock, so several
actors on one node share one download. Each file is checked against the listing's size and,
for single-part uploads, its MD5 ETag; a cached copy is reused while the remote listing
(sizes + ETags) is unchanged.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from model.cache import cache_home

DATA_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model", ".tiktoken")
MANIFEST = ".clipnote-manifest.json"


class FetchError(RuntimeError):
    """The checkpoint could not be fetched or verified; the message names the object."""


def default_cache_dir() -> Path:
    return cache_home() / "checkpoints"


S3_CLIENT_CONFIG: dict[str, Any] = {
    "retries": {"mode": "standard", "max_attempts": 10},
    "connect_timeout": 10,
    "read_timeout": 60,
}
"""botocore: throttling (503 SlowDown), 5xx, dropped and timed-out connections are retried
up to 10 times with exponential backoff and full jitter, for every read, list and write."""
# s3fs also loops around each call (5 tries by default: SlowDown, truncated responses).


def s3_filesystem(endpoint_url: str | None = None, region: str | None = None) -> Any:
    """s3fs with the standard AWS credential chain; `endpoint_url` for S3-compatible stores."""
    import s3fs

    client_kwargs: dict[str, Any] = {}
    if endpoint_url:
        client_kwargs["endpoint_url"] = endpoint_url
    if region:
        client_kwargs["region_name"] = region
    return s3fs.S3FileSystem(
        client_kwargs=client_kwargs,
        config_kwargs=S3_CLIENT_CONFIG,
        skip_instance_cache=True,
    )


def _listing(fs: Any, prefix: str) -> dict[str, dict[str, Any]]:
    """`name -> {size, etag}` for the data files directly under `prefix`."""
    try:
        entries = fs.ls(prefix, detail=True, refresh=True)
    except FileNotFoundError as err:
        raise FetchError(f"s3://{prefix}: no such prefix (no config.json to load)") from err
    files = {}
    for entry in entries:
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if entry.get("type") == "file" and name.endswith(DATA_SUFFIXES):
            etag = str(entry.get("ETag") or entry.get("etag") or "").strip('"')
            files[name] = {"size": int(entry["size"]), "etag": etag}
    if "config.json" not in files:
        raise FetchError(f"s3://{prefix}: no config.json under this prefix")
    return files


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _verify(path: Path, meta: dict[str, Any], uri: str) -> None:
    if path.stat().st_size != meta["size"]:
        raise FetchError(f"{uri}: size {path.stat().st_size} != listed {meta['size']}")
    etag = meta["etag"]
    if etag and "-" not in etag and len(etag) == 32:
        md5 = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                md5.update(block)
        if md5.hexdigest() != etag:
            raise FetchError(f"{uri}: MD5 {md5.hexdigest()} does not match ETag {etag}")


def fetch_checkpoint(
    uri: str, *, endpoint_url: str | None = None, cache_dir: Path | None = None
) -> Path:
    """Local directory holding the checkpoint at `uri` (`s3://bucket/prefix`)."""
    if not uri.startswith("s3://"):
        raise FetchError(f"{uri}: not an s3:// URI")
    prefix = uri[len("s3://") :].rstrip("/")
    fs = s3_filesystem(endpoint_url)
    listing = _listing(fs, prefix)
    key = hashlib.sha256(f"{endpoint_url or ''}|{prefix}".encode()).hexdigest()[:20]
    root = Path(cache_dir or default_cache_dir())
    target = root / key
    with _locked(root / f"{key}.lock"):
        manifest = target / MANIFEST
        if manifest.is_file() and json.loads(manifest.read_text()) == listing:
            return target
        staging = root / f"{key}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name, meta in sorted(listing.items()):
            fs.get_file(f"{prefix}/{name}", str(staging / name))
            _verify(staging / name, meta, f"s3://{prefix}/{name}")
        (staging / MANIFEST).write_text(json.dumps(listing, sort_keys=True))
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target
