"""One way to reach files, local or in S3-compatible object storage (fsspec underneath).

Every reader and writer in the pipeline goes through `Storage`, so tests use temp dirs and
a loopback S3 server exactly as production uses AWS. Credentials come from the standard AWS
chain (environment, config files, instance roles) and are never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StorageOptions:
    """Where S3 lives: `endpoint_url` for MinIO/Ceph/R2 or a test server; None means AWS."""

    endpoint_url: str | None = None
    region: str | None = None


def is_remote(uri: str) -> bool:
    return uri.startswith("s3://")


def strip_scheme(uri: str) -> str:
    return uri[len("s3://") :] if is_remote(uri) else uri


def filesystem(uri: str, options: StorageOptions | None = None) -> Any:
    """The fsspec filesystem serving `uri`."""
    import fsspec

    from model.remote import s3_filesystem

    options = options or StorageOptions()
    if not is_remote(uri):
        return fsspec.filesystem("file")
    return s3_filesystem(options.endpoint_url, options.region)


def open_for_arrow(fs: Any, uri: str) -> Any:
    """`uri` opened for Arrow to read (a context manager): a local file as Arrow's own memory
    map, an S3 object as the filesystem's Python file.

    Why not a Python file everywhere: Arrow reads ahead on its I/O threads even on one thread
    (`ReadAsync`), and a buffer read from a Python file takes the GIL to be freed. One such
    read finishing while the interpreter exits is cancelled through Arrow's code and aborts
    the process ("terminate called without an active exception", seen in a core dump of a
    `similar` lookup: `PyBuffer::~PyBuffer` on an Arrow I/O thread in `take_gil`). Arrow's own
    file holds no Python object. S3 objects still come through s3fs, so the risk stays there.
    """
    if is_remote(uri):
        return fs.open(strip_scheme(uri), "rb")
    import pyarrow as pa

    return pa.memory_map(uri, "r")


def s3_client(options: StorageOptions | None = None) -> Any:
    """A boto3 S3 client with the same endpoint, credentials chain and retries as
    `filesystem`, for what s3fs cannot stream (a prefix listing page by page)."""
    import boto3
    from botocore.config import Config

    from model.remote import S3_CLIENT_CONFIG

    options = options or StorageOptions()
    return boto3.session.Session().client(
        "s3",
        endpoint_url=options.endpoint_url,
        region_name=options.region,
        config=Config(**S3_CLIENT_CONFIG),
    )


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def read_bytes(uri: str, options: StorageOptions | None = None) -> bytes:
    fs = filesystem(uri, options)
    with fs.open(strip_scheme(uri), "rb") as fh:
        return fh.read()


def read_range(uri: str, offset: int, size: int, options: StorageOptions | None = None) -> bytes:
    """`size` bytes at `offset`: one ranged GET in S3, a seek locally."""
    fs = filesystem(uri, options)
    with fs.open(strip_scheme(uri), "rb") as fh:
        fh.seek(offset)
        return fh.read(size)


def write_bytes(uri: str, data: bytes, options: StorageOptions | None = None) -> None:
    fs = filesystem(uri, options)
    path = strip_scheme(uri)
    if not is_remote(uri):
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with fs.open(path, "wb") as fh:
        fh.write(data)
