"""Getting one listed video ready for the decoder, in memory bounded by the listed size.

`read_video` (sources) reads a whole object into memory, which is right for small files and
wrong for a 2 GB one or for `/dev/zero` named in a manifest. Here:
- a local regular file is handed to the decoder by path (nothing is read ahead); anything else
  at a local path (a device, a FIFO, a socket) is refused before it is opened;
- an object or a tar member is read in chunks, never past its listed size (a longer or shorter
  object means it changed since listing: an error, not bytes of another version); small ones
  stay in memory, large ones are spilled to a file in a scratch folder the caller owns.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.core.errors import InputNotFound, InputUnreadable
from pipeline.core.records import VideoRef, VideoSource
from pipeline.core.storage import StorageOptions, filesystem, is_remote, strip_scheme
from pipeline.input.problems import listing_error

CHUNK = 8 << 20

_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def check_regular_file(path: str, uri: str) -> int:
    """The size of the regular file at `path`, or a `SourceError` saying what it is instead."""
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        raise InputNotFound(f"object not found: {uri}") from exc
    except OSError as exc:
        raise InputUnreadable(f"cannot read {uri}: {type(exc).__name__}") from exc
    if not stat.S_ISREG(info.st_mode):
        kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        raise InputUnreadable(f"not a regular file ({kind}): {uri}")
    return info.st_size


def _size_changed(ref: VideoRef, got: int | str) -> InputUnreadable:
    return InputUnreadable(
        f"size changed since listing: {ref.uri} (listed {ref.size}, read {got} bytes)"
    )


@contextmanager
def fetch_video(
    ref: VideoRef,
    options: StorageOptions | None,
    scratch_dir: str | None,
    spill_bytes: int,
) -> Iterator[VideoSource]:
    """The video's bytes, or the path of a local file holding exactly them.

    A spilled copy lives in `scratch_dir` (the caller removes the folder, even when this
    process is killed); with no scratch folder everything is read into memory.
    """
    reason = listing_error(ref)
    if reason is not None:  # known at listing time; decode makes it the video's error row
        raise InputUnreadable(reason)
    source = ref.shard_uri if ref.shard_uri is not None else ref.uri
    read_from = ref.read_path  # the raw local name when it is not UTF-8
    remote = is_remote(source)
    if not remote:
        actual = check_regular_file(read_from, source)
        if ref.shard_uri is None:
            if ref.size >= 0 and actual != ref.size:
                raise _size_changed(ref, actual)
            yield read_from
            return
    offset = int(ref.offset or 0) if ref.shard_uri is not None else 0
    if ref.size < 0:
        raise InputUnreadable(f"size unknown for {ref.uri}: list it again")
    spill = scratch_dir is not None and ref.size > spill_bytes
    try:
        fs = filesystem(source, options)
        with fs.open(strip_scheme(read_from), "rb") as fh:
            if offset:
                fh.seek(offset)
            if spill:
                path = os.path.join(scratch_dir, "video")
                with open(path, "wb") as out:
                    _copy_exactly(fh, out, ref)
                data: VideoSource = path
            else:
                data = _read_exactly(fh, ref)
            if ref.shard_uri is None and fh.read(1):
                raise _size_changed(ref, f"more than {ref.size}")
    except FileNotFoundError as exc:
        raise InputNotFound(f"object not found: {source}") from exc
    except IsADirectoryError as exc:
        raise InputUnreadable(f"not a file: {source}") from exc
    except OSError as exc:
        raise InputUnreadable(f"cannot read {ref.uri}: {type(exc).__name__}: {exc}") from exc
    yield data


def _read_exactly(fh, ref: VideoRef) -> bytes:
    buffer = io.BytesIO()
    _copy_exactly(fh, buffer, ref)
    return buffer.getvalue()


def _copy_exactly(fh, out, ref: VideoRef) -> None:
    """Exactly `ref.size` bytes from `fh` to `out`, in chunks; fewer is an error."""
    total = 0
    while total < ref.size:
        chunk = fh.read(min(CHUNK, ref.size - total))
        if not chunk:
            raise _size_changed(ref, total)
        out.write(chunk)
        total += len(chunk)


def read_video(ref: VideoRef, options: StorageOptions | None = None) -> bytes:
    """The video's bytes in one read: the whole object, or one byte range of its shard.

    The decode stage's own reader (`pipeline.input.fetch.fetch_video`) with nothing spilled, for
    callers that want bytes. A short or long read means the object changed since listing;
    that is an error rather than bytes that no longer match the listed version.
    """

    with fetch_video(ref, options, scratch_dir=None, spill_bytes=0) as data:
        if isinstance(data, bytes):
            return data
        with open(data, "rb") as fh:  # a local regular file of the listed size
            return fh.read()
