"""Which videos a run covers: turning an input URI into a sorted, versioned list of `VideoRef`.

Listing is pure (no Ray) so it runs once on the driver and the list itself is the run's input
of record: every listed video gets an output row, captioned or failed. That is why nothing that
was asked for is dropped here. A manifest entry that does not exist is listed with
`size=-1, version="missing"`, and a `.tar` shard that cannot be parsed is listed as one ref for
the shard itself (version `"<shard version>:unreadable-tar"`); `read_video` raises `SourceError`
for both, and the decode stage turns that into an error row.

Inputs, by what `input_uri` names:
- a local directory or an `s3://bucket/prefix`: recursive; videos by extension, and `.tar`
  shards expanded into their video members;
- a glob (`*` in the URI), local or S3: each match is handled like a directory, video or shard;
- a manifest (`.parquet` / `.jsonl` / `.txt`): explicit entries, local or S3, relative entries
  resolved against the manifest's folder. Entries are not filtered by extension (the user asked
  for them); `.tar` entries are expanded, and `shard.tar#member` entries name one member;
- a single video file or `.tar` shard.

Names are data: a local name that is not UTF-8 is listed with its odd bytes escaped and read
by its raw name; symlinked folders are followed, each real folder once (loops end). A manifest
in object storage may only name objects: a local or absolute path, `~`, `file://` or a `..`
that climbs out of its bucket is refused as an error row, as is a manifest row with no usable
URI or an invalid JSON line: one bad row never stops the listing, and never vanishes.

Tar members are located, never extracted: the ref carries the member's data offset and size in
the shard and `read_video` does one ranged read. Member names are data only (never joined to
a filesystem path), so `../../x.mp4` in a shard is harmless. Only uncompressed tar is supported,
because offsets into a compressed stream cannot be read with a range request.
"""

from __future__ import annotations

import glob as globlib
import json
import os
import posixpath
import tarfile
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from pipeline.records import VideoRef
from pipeline.storage import (
    StorageOptions,
    filesystem,
    is_remote,
    strip_scheme,
)

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
SHARD_EXTENSIONS: tuple[str, ...] = (".tar",)
TEXT_MANIFEST_EXTENSIONS: tuple[str, ...] = (".txt", ".lst", ".list")
JSONL_MANIFEST_EXTENSIONS: tuple[str, ...] = (".jsonl", ".ndjson")
MANIFEST_EXTENSIONS: tuple[str, ...] = (
    ".parquet",
    *JSONL_MANIFEST_EXTENSIONS,
    *TEXT_MANIFEST_EXTENSIONS,
)
MANIFEST_COLUMNS: tuple[str, ...] = ("uri", "video_uri", "path")  # first one present wins
MISSING_VERSION = "missing"
UNREADABLE_TAR_SUFFIX = ":unreadable-tar"
INVALID_PREFIX = "invalid:"
"""`version` of a listed entry that cannot be read at all; the reason follows the prefix."""

_MEMBER_SEP = "#"
_TAR_HEADER_BLOCK = 2**16  # S3 read-ahead while walking headers: small, so member data is skipped
_STAT_WORKERS = 16  # manifest entries are stat'ed concurrently: one HEAD each on S3


class SourceError(RuntimeError):
    """An input that cannot be listed or read; the message names the URI, never credentials."""


def list_videos(
    input_uri: str,
    options: StorageOptions | None = None,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
) -> list[VideoRef]:
    """Every video `input_uri` names, once each, sorted by uri so runs are reproducible."""
    lister = _Lister(options, extensions)
    uri = _normalize(input_uri)
    refs = lister.expand_glob(uri) if "*" in uri else lister.expand_input(uri)
    return _dedupe_sorted(_readable_ref(ref) for ref in refs)


def listing_error(ref: VideoRef) -> str | None:
    """Why a listed ref cannot be read at all (missing, unreadable shard, refused entry)."""
    if ref.version == MISSING_VERSION:
        return f"object not found: {ref.uri}"
    if ref.version.endswith(UNREADABLE_TAR_SUFFIX):
        return f"not a readable (uncompressed) tar shard: {ref.uri}"
    if ref.version.startswith(INVALID_PREFIX):
        return ref.version[len(INVALID_PREFIX) :].strip()
    return None


def read_video(ref: VideoRef, options: StorageOptions | None = None) -> bytes:
    """The video's bytes in one read: the whole object, or one byte range of its shard.

    The decode stage's own reader (`pipeline.fetch.fetch_video`) with nothing spilled, for
    callers that want bytes. A short or long read means the object changed since listing;
    that is an error rather than bytes that no longer match the listed version.
    """
    from .fetch import fetch_video

    with fetch_video(ref, options, scratch_dir=None, spill_bytes=0) as data:
        if isinstance(data, bytes):
            return data
        with open(data, "rb") as fh:  # a local regular file of the listed size
            return fh.read()


class _Lister:
    """One listing: the options, the extension filter and one filesystem per scheme."""

    def __init__(self, options: StorageOptions | None, extensions: Sequence[str]) -> None:
        self.options = options
        self.extensions = tuple(
            e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions
        )
        self._fs: dict[bool, Any] = {}
        self._shards: dict[str, dict[str, VideoRef]] = {}
        self._shard_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._fs_lock = threading.Lock()

    def fs(self, uri: str) -> Any:
        remote = is_remote(uri)
        with self._fs_lock:
            if remote not in self._fs:
                self._fs[remote] = filesystem(uri, self.options)
        return self._fs[remote]

    def stat(self, uri: str) -> dict[str, Any] | None:
        """`{"type", "size", "version"}` for `uri`, or None when nothing is there."""
        try:
            info = self.fs(uri).info(strip_scheme(uri))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SourceError(f"cannot stat {uri}: {type(exc).__name__}: {exc}") from exc
        return self.stat_from_info(uri, info)

    def stat_from_info(self, uri: str, info: dict[str, Any]) -> dict[str, Any]:
        if info["type"] == "directory":
            return {"type": "directory", "size": 0, "version": ""}
        return {"type": "file", "size": int(info["size"]), "version": self.version(uri, info)}

    def version(self, uri: str, info: dict[str, Any]) -> str:
        """ETag in S3 (content-derived); mtime in ns locally (float seconds would round)."""
        if is_remote(uri):
            etag = info.get("ETag") or info.get("etag")
            return str(etag).strip('"') if etag else str(info.get("LastModified", ""))
        return str(os.stat(uri).st_mtime_ns)

    # -- what an input URI names ------------------------------------------------------------

    def expand_input(self, uri: str) -> list[VideoRef]:
        member = _split_member(uri)
        if member is not None:
            found = self.shard_member(*member)
            if found is None:
                raise SourceError(f"input not found: {uri}")
            return [found]
        stat = self.stat(uri)
        if stat is None:
            raise SourceError(f"input not found: {uri}")
        if stat["type"] == "directory":
            return self.walk(uri)
        suffix = _suffix(uri)
        if suffix in MANIFEST_EXTENSIONS:
            return self.expand_manifest(uri)
        if suffix in SHARD_EXTENSIONS:
            return self.list_shard(uri, stat)
        if suffix in self.extensions:
            return [VideoRef(uri=uri, size=stat["size"], version=stat["version"])]
        raise SourceError(
            f"unsupported input: {uri} (expected a directory, prefix, glob, video, .tar shard, "
            "or a .parquet/.jsonl/.txt manifest)"
        )

    def expand_glob(self, pattern: str) -> list[VideoRef]:
        """Matches are taken like a directory's contents: directories, videos and shards."""
        refs: list[VideoRef] = []
        matches = self.glob(pattern)
        if not matches:
            raise SourceError(f"input not found: no match for {pattern}")
        for uri, stat in sorted(matches.items()):
            if stat["type"] == "directory":
                refs.extend(self.walk(uri))
            else:
                refs.extend(self.listed_file(uri, stat["size"], stat["version"]))
        return refs

    def glob(self, pattern: str) -> dict[str, dict[str, Any]]:
        if is_remote(pattern):
            found = self.fs(pattern).glob(strip_scheme(pattern), detail=True)
            return {f"s3://{p}": self.stat_from_info(f"s3://{p}", i) for p, i in found.items()}
        stats = {os.path.abspath(p): self.stat(p) for p in globlib.glob(pattern, recursive=True)}
        return {uri: stat for uri, stat in stats.items() if stat is not None}

    def walk(self, uri: str) -> list[VideoRef]:
        """Every video and shard under a directory or prefix."""
        refs: list[VideoRef] = []
        for file_uri, size, version in self.files_under(uri):
            refs.extend(self.listed_file(file_uri, size, version))
        return refs

    def files_under(self, uri: str) -> Iterable[tuple[str, int, str]]:
        if is_remote(uri):
            found = self.fs(uri).find(strip_scheme(uri), detail=True, withdirs=False)
            for path, info in found.items():
                if info.get("type") != "directory":
                    file_uri = f"s3://{path}"
                    yield file_uri, int(info["size"]), self.version(file_uri, info)
            return
        seen: set[tuple[int, int]] = set()
        for root, dirs, files in os.walk(uri, followlinks=True):
            try:
                folder = os.stat(root)
            except OSError:
                dirs[:] = []
                continue
            if (folder.st_dev, folder.st_ino) in seen:  # a symlink back to a folder walked
                dirs[:] = []
                continue
            seen.add((folder.st_dev, folder.st_ino))
            dirs.sort()
            for name in files:
                path = os.path.join(root, name)
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue  # dangling symlink, or removed mid-walk
                yield path, st.st_size, str(st.st_mtime_ns)

    def listed_file(self, uri: str, size: int, version: str) -> list[VideoRef]:
        """A file met while walking: a video, a shard to expand, or not ours."""
        suffix = _suffix(uri)
        if suffix in SHARD_EXTENSIONS:
            return self.list_shard(uri, {"size": size, "version": version})
        if suffix in self.extensions:
            return [VideoRef(uri=uri, size=size, version=version)]
        return []

    # -- tar shards ---------------------------------------------------------------------------

    def list_shard(self, shard_uri: str, stat: dict[str, Any]) -> list[VideoRef]:
        """Video members of an uncompressed tar, found by walking headers (data is seeked over).

        A shard that cannot be parsed at all, or whose tail is corrupt or truncated, also gets
        one ref for the shard itself so the problem shows up as an error row, not a gap.
        """
        unreadable = VideoRef(
            uri=shard_uri, size=stat["size"], version=stat["version"] + UNREADABLE_TAR_SUFFIX
        )
        members: dict[str, VideoRef] = {}
        fs = self.fs(shard_uri)
        try:
            with fs.open(strip_scheme(shard_uri), "rb", block_size=_TAR_HEADER_BLOCK) as fh:
                intact = self._read_members(fh, shard_uri, stat, members)
        except FileNotFoundError as exc:
            raise SourceError(f"object not found: {shard_uri}") from exc
        except (tarfile.TarError, EOFError):
            intact = False
        refs = list(members.values())
        return refs if intact else [*refs, unreadable]

    def _read_members(
        self, fh: Any, shard_uri: str, stat: dict[str, Any], members: dict[str, VideoRef]
    ) -> bool:
        """Fill `members` (a later duplicate name wins, as on extraction); False if damaged."""
        with tarfile.open(fileobj=fh, mode="r:") as tar:
            for info in tar:
                if not info.isreg() or info.issparse():
                    continue  # dirs, links, devices; sparse data is not one contiguous range
                if _suffix(info.name) not in self.extensions:
                    continue
                members[info.name] = VideoRef(
                    uri=f"{shard_uri}{_MEMBER_SEP}{info.name}",
                    size=info.size,
                    version=f"{stat['version']}:{info.name}",
                    offset=info.offset_data,
                    member=info.name,
                    shard_uri=shard_uri,
                )
            # tarfile ends quietly at a bad header after the first; only zeros (or EOF) are a
            # clean end of archive.
            fh.seek(tar.offset)
            tail = fh.read(tarfile.BLOCKSIZE)
        return not tail.strip(b"\0")

    # -- manifests ----------------------------------------------------------------------------

    def expand_manifest(self, manifest_uri: str) -> list[VideoRef]:
        resolved = [
            _resolve_entry(e, manifest_uri) for e in self.read_manifest_entries(manifest_uri)
        ]
        refused = [entry for entry in resolved if isinstance(entry, Refused)]
        entries = _unique(entry for entry in resolved if isinstance(entry, str))
        with ThreadPoolExecutor(max_workers=_STAT_WORKERS) as pool:
            groups = list(pool.map(self.expand_entry, entries))
        return [ref for group in groups for ref in group] + [r.ref() for r in refused]

    def expand_entry(self, uri: str) -> list[VideoRef]:
        """One manifest entry; missing entries stay in the list so they get an error row."""
        member = _split_member(uri)
        if member is not None:
            return [self.shard_member(*member) or _missing(uri)]
        stat = self.stat(uri)
        if stat is None:
            return [_missing(uri)]
        if stat["type"] == "directory":
            return self.walk(uri)
        if _suffix(uri) in SHARD_EXTENSIONS:
            return self.list_shard(uri, stat)
        return [VideoRef(uri=uri, size=stat["size"], version=stat["version"])]

    def shard_member(self, shard_uri: str, member: str) -> VideoRef | None:
        """One member named by a `shard.tar#member` entry (e.g. re-running failed rows).

        Each shard is listed once per listing, however many of its members are named.
        """
        with self._lock:
            shard_lock = self._shard_locks.setdefault(shard_uri, threading.Lock())
        with shard_lock:
            if shard_uri not in self._shards:
                stat = self.stat(shard_uri)
                refs = self.list_shard(shard_uri, stat) if stat and stat["type"] == "file" else []
                self._shards[shard_uri] = {r.member: r for r in refs if r.member is not None}
        return self._shards[shard_uri].get(member)

    def read_manifest_entries(self, manifest_uri: str) -> list[Entry]:
        suffix = _suffix(manifest_uri)
        with self.fs(manifest_uri).open(strip_scheme(manifest_uri), "rb") as fh:
            if suffix == ".parquet":
                return _parquet_entries(fh, manifest_uri)
            # Local file names need not be UTF-8: keep their bytes (surrogateescape).
            text = fh.read().decode("utf-8", errors="surrogateescape")
        if suffix in JSONL_MANIFEST_EXTENSIONS:
            return _jsonl_entries(text, manifest_uri)
        return _text_entries(text)


@dataclass(frozen=True)
class Refused:
    """A manifest entry that names nothing readable; it becomes an error row, not a gap."""

    label: str
    reason: str

    def ref(self) -> VideoRef:
        return VideoRef(uri=self.label, size=-1, version=f"{INVALID_PREFIX} {self.reason}")


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


def _parquet_entries(fh: Any, manifest_uri: str) -> list[Entry]:
    """Per row, the first column with a value (as JSONL does); a row with none is refused."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(fh)
    columns = [c for c in MANIFEST_COLUMNS if c in parquet.schema_arrow.names]
    if not columns:
        raise SourceError(
            f"manifest {manifest_uri} has none of the columns {list(MANIFEST_COLUMNS)}"
        )
    entries: list[Entry] = []
    for row_no, row in enumerate(parquet.read(columns=columns).to_pylist(), start=1):
        value = _first_value(row)
        entries.append(value if value is not None else _no_uri(manifest_uri, f"row {row_no}"))
    return entries


def _jsonl_entries(text: str, manifest_uri: str) -> list[Entry]:
    entries: list[Entry] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {line_no}"
        try:
            row = json.loads(line.encode("utf-8", errors="surrogateescape").decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            label = f"{manifest_uri}#{where.replace(' ', '-')}"
            entries.append(Refused(label, f"manifest {manifest_uri} {where}: invalid JSON ({exc})"))
            continue
        value = _first_value(row) if isinstance(row, dict) else None
        entries.append(value if value is not None else _no_uri(manifest_uri, where))
    return entries


def _text_entries(text: str) -> list[Entry]:
    """One URI per line; only whole lines starting with `#` are comments (`#` marks members)."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _resolve_entry(entry: Entry, manifest_uri: str) -> Entry:
    """Absolute URI for a manifest entry; relative ones are relative to the manifest's folder.

    A remote manifest names objects only: local paths, `~`, `file://` and relative paths that
    leave its bucket are refused (workers would otherwise read files of their own machine).
    """
    if isinstance(entry, Refused) or is_remote(entry):
        return entry
    if is_remote(manifest_uri):
        return _resolve_remote_entry(entry, manifest_uri)
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


def _has_undecodable(text: str) -> bool:
    """True for a str holding bytes that were not UTF-8 (surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _readable(text: str) -> str:
    """`text` as valid UTF-8: bytes that were not UTF-8 shown as `\\xNN`."""
    if not _has_undecodable(text):
        return text
    raw = text.encode("utf-8", errors="surrogateescape")
    return raw.decode("utf-8", errors="backslashreplace")


def _readable_ref(ref: VideoRef) -> VideoRef:
    """A ref every field of which Arrow can store, reading from the raw local name if needed."""
    fields = (ref.uri, ref.version, ref.member, ref.shard_uri)
    if not any(value is not None and _has_undecodable(value) for value in fields):
        return ref
    read_from = ref.read_path
    raw = quote(os.fsencode(read_from), safe="/") if _has_undecodable(read_from) else None
    return replace(
        ref,
        uri=_readable(ref.uri),
        version=_readable(ref.version),
        member=None if ref.member is None else _readable(ref.member),
        shard_uri=None if ref.shard_uri is None else _readable(ref.shard_uri),
        raw_path=raw,
    )


def _split_member(uri: str) -> tuple[str, str] | None:
    """(`shard.tar`, member) for a `shard.tar#member` URI, as written by `list_videos`."""
    marker = f"{SHARD_EXTENSIONS[0]}{_MEMBER_SEP}"
    index = uri.lower().find(marker)
    if index < 0:
        return None
    cut = index + len(SHARD_EXTENSIONS[0])
    return uri[:cut], uri[cut + len(_MEMBER_SEP) :]


def _normalize(uri: str) -> str:
    """S3 URIs as given (minus a trailing slash); local paths absolute, so ids don't depend
    on the working directory of whoever listed them."""
    if is_remote(uri):
        return uri.rstrip("/")
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    return os.path.abspath(os.path.expanduser(uri))


def _suffix(name: str) -> str:
    return posixpath.splitext(name)[1].lower()


def _missing(uri: str) -> VideoRef:
    return VideoRef(uri=uri, size=-1, version=MISSING_VERSION)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _dedupe_sorted(refs: Iterable[VideoRef]) -> list[VideoRef]:
    by_uri = {ref.uri: ref for ref in refs}
    return [by_uri[uri] for uri in sorted(by_uri)]
