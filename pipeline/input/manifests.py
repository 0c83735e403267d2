"""Manifests: explicit lists of videos (`.parquet`, `.jsonl`, `.txt`), read entry by entry.

An entry with no usable URI, an invalid JSON line or (in object storage) a name that is not an
object of the bucket is refused as an error row: one bad row never stops the listing.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pipeline.core.errors import InputUnreadable
from pipeline.core.records import VideoRef
from pipeline.core.storage import is_remote, strip_scheme
from pipeline.input.names import _has_undecodable, _readable, _split_member, resolve_shard_part
from pipeline.input.problems import refused_ref

MANIFEST_COLUMNS: tuple[str, ...] = ("uri", "video_uri", "path")  # first one present wins


@dataclass(frozen=True)
class Refused:
    """A manifest entry that names nothing readable; it becomes an error row, not a gap."""

    label: str
    reason: str

    def ref(self) -> VideoRef:
        return refused_ref(self.label, self.reason)


Entry = str | Refused


def _first_value(row: dict[str, Any]) -> str | None:
    """The first non-blank of the manifest columns, in `MANIFEST_COLUMNS` order."""
    for key in MANIFEST_COLUMNS:
        value = row.get(key)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def _no_uri(manifest_uri: str, where: str) -> Refused:
    return Refused(
        f"{manifest_uri}#{where.replace(' ', '-')}",
        f"manifest {manifest_uri} {where}: none of {list(MANIFEST_COLUMNS)} has a value",
    )


def _parquet_entries(fh: Any, manifest_uri: str) -> Iterator[Entry]:
    """Per row, the first column with a value (as JSONL does); a row with none is refused.
    Read a batch at a time."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(fh)
    columns = [c for c in MANIFEST_COLUMNS if c in parquet.schema_arrow.names]
    if not columns:
        raise InputUnreadable(
            f"manifest {manifest_uri} has none of the columns {list(MANIFEST_COLUMNS)}"
        )
    rows = (
        row
        for batch in parquet.iter_batches(columns=columns, use_threads=False)
        for row in batch.to_pylist()
    )
    for row_no, row in enumerate(rows, start=1):
        value = _first_value(row)
        yield value if value is not None else _no_uri(manifest_uri, f"row {row_no}")


def _jsonl_entries(lines: Iterable[str], manifest_uri: str) -> Iterator[Entry]:
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"line {line_no}"
        try:
            row = json.loads(line.encode("utf-8", errors="surrogateescape").decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            label = f"{manifest_uri}#{where.replace(' ', '-')}"
            yield Refused(label, f"manifest {manifest_uri} {where}: invalid JSON ({exc})")
            continue
        value = _first_value(row) if isinstance(row, dict) else None
        yield value if value is not None else _no_uri(manifest_uri, where)


def _text_entries(lines: Iterable[str]) -> Iterator[Entry]:
    """One URI per line; only whole lines starting with `#` are comments (`#` marks members)."""
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def _resolve_entry(entry: Entry, manifest_uri: str) -> Entry:
    """Absolute URI for a manifest entry; relative ones are relative to the manifest's folder.

    A remote manifest names objects only: local paths, `~`, `file://` and relative paths that
    leave its bucket are refused (workers would otherwise read files of their own machine).
    """
    if isinstance(entry, Refused) or is_remote(entry):
        return entry
    if is_remote(manifest_uri):
        member = _split_member(entry)
        if member is None:
            return _resolve_remote_entry(entry, manifest_uri)
        shard = _resolve_remote_entry(member[0], manifest_uri)
        if isinstance(shard, Refused):
            return Refused(_readable(entry), shard.reason)
        return f"{shard}#{member[1]}"
    return resolve_shard_part(entry, lambda path: _resolve_local_entry(path, manifest_uri))


def _resolve_local_entry(entry: str, manifest_uri: str) -> str:
    entry = os.path.expanduser(entry.removeprefix("file://"))
    if os.path.isabs(entry):
        return os.path.normpath(entry)
    return os.path.normpath(os.path.join(os.path.dirname(manifest_uri), entry))


def _resolve_remote_entry(entry: str, manifest_uri: str) -> Entry:
    label = _readable(entry)
    if _has_undecodable(entry):
        return Refused(label, f"entry of {manifest_uri} is not valid UTF-8: {label}")
    if entry.startswith(("/", "~", "file:")) or "://" in entry:
        return Refused(
            label,
            f"entry of remote manifest {manifest_uri} names a local or unsupported path: "
            f"{label} (a remote manifest may name s3:// objects and keys relative to it)",
        )
    bucket, _, key = strip_scheme(manifest_uri).partition("/")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(key), entry))
    if resolved == ".." or resolved.startswith("../"):
        return Refused(label, f"entry of {manifest_uri} leaves its bucket s3://{bucket}: {label}")
    return f"s3://{bucket}/{resolved}"
