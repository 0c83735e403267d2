"""The weights' identity: sha256 over the weight files' bytes, hashed once per file version.

`model_id` (`<name>@<12 hex>`) joins every output fingerprint, so it must change whenever the
weights do, and be the same for the same bytes wherever they lie (a local directory and its
copy fetched from `s3://` give one id). Hashing 7 GB at every actor start costs seconds of disk
and CPU, so the digest is kept in the clipnote cache (`$CLIPNOTE_CACHE/digests`, beside the
fetched checkpoints), under a key made of each file's resolved path, size, mtime, ctime and
inode. Any write to a file moves its mtime and ctime (and `os.utime` can set back only the
mtime), a replaced file has a new inode, so a changed file is hashed again; a copy is too.
The cache lives outside the checkpoint directory, which may be read-only or the package's own
toy checkpoint; where the cache cannot be written the digest is simply computed each time.

Imports no torch: the driver names a model's identity without it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from model.cache import cache_home


def digest_cache_dir() -> Path:
    """`$CLIPNOTE_CACHE/digests` (`~/.cache/clipnote/digests` by default)."""
    return cache_home() / "digests"


def file_versions_key(files: Iterable[Path]) -> str:
    """A name for these exact file versions: path, size, mtime, ctime, inode of each."""
    stamps = []
    for path in sorted(Path(f).resolve() for f in files):
        st = path.stat()
        stamps.append([str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino])
    return hashlib.sha256(json.dumps(stamps).encode()).hexdigest()[:32]


def hash_files(files: Iterable[Path]) -> str:
    """sha256 over the files' bytes, in path order."""
    digest = hashlib.sha256()
    for path in sorted(files):
        with open(path, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def weights_digest(files: Iterable[Path]) -> str:
    """sha256 over the weight files' bytes (in path order): the identity of a model in
    fingerprints; read from the digest cache while the files are unchanged."""
    files = list(files)
    key = file_versions_key(files)
    entry = digest_cache_dir() / f"{key}.sha256"
    try:
        cached = entry.read_text().strip()
    except OSError:
        cached = ""
    if len(cached) == 64 and all(c in "0123456789abcdef" for c in cached):
        return cached
    digest = hash_files(files)
    if file_versions_key(files) != key:
        return digest  # written to while hashed: keep nothing for either version
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        partial = entry.with_suffix(f".{os.getpid()}.partial")
        partial.write_text(digest + "\n")
        os.replace(partial, entry)  # readers see the whole digest or none
    except OSError:
        pass  # a read-only cache: the digest is still right, only not kept
    return digest
