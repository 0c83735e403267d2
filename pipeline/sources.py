"""Which videos a run covers: turning an input URI into a stream of versioned `VideoRef`.

Listing is pure (no Ray) and streams: a run writes what it lists into its work plan
(`pipeline.work_plan`) page by page, so no process ever holds the whole listing, and the plan
is the run's input of record: every listed video gets an output row, captioned or failed.
That is why nothing that was asked for is dropped here. A manifest entry that does not exist is
listed with `size=-1, version="missing"`, and a `.tar` shard that cannot be parsed is listed as
one ref for the shard itself (version `"<shard version>:unreadable-tar"`); `read_video` raises
`SourceError` for both, and the decode stage turns that into an error row.

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
import hashlib
import itertools
import json
import os
import posixpath
import re
import tarfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import quote

from pipeline.records import VideoRef
from pipeline.storage import (
    StorageOptions,
    filesystem,
    is_remote,
    s3_client,
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
T = TypeVar("T")
_ENTRY_PAGE = 1024  # manifest entries expanded at a time (bounds what a listing holds)


class SourceError(RuntimeError):
    """An input that cannot be listed or read; the message names the URI, never credentials."""


def iter_videos(
    input_uri: str,
    options: StorageOptions | None = None,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
) -> Iterator[VideoRef]:
    """Every video `input_uri` names, once each, streamed in listing order.

    Nothing is held whole: S3 prefixes are read page by page (1,000 keys a request), folders
    walked as they go, manifests read line by line (Parquet: batch by batch) and expanded a
    page of entries at a time. Only manifests and globs can name a video twice; for those a
    16-byte digest per video listed so far is kept to drop repeats (`_once_each`: about 75
    bytes a video, against some 2 KB for a held `VideoRef`).
    """
    lister = _Lister(options, extensions)
    uri = _normalize(input_uri)
    refs = lister.iter_glob(uri) if "*" in uri else lister.iter_input(uri)
    yield from (_readable_ref(ref) for ref in refs)


def list_videos(
    input_uri: str,
    options: StorageOptions | None = None,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
) -> list[VideoRef]:
    """`iter_videos` collected and sorted by uri, for callers that want the whole list (a
    sample to plan from, tests). Runs stream the listing instead (`pipeline.work_plan`)."""
    return sorted(iter_videos(input_uri, options, extensions), key=lambda ref: ref.uri)


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
        self._s3: Any = None
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

    def iter_input(self, uri: str) -> Iterator[VideoRef]:
        member = _split_member(uri)
        if member is not None:
            found = self.shard_member(*member)
            if found is None:
                raise SourceError(f"input not found: {uri}")
            yield found
            return
        stat = self.stat(uri)
        if stat is None:
            raise SourceError(f"input not found: {uri}")
        suffix = _suffix(uri)
        if stat["type"] == "directory":
            yield from self.walk(uri)
        elif suffix in MANIFEST_EXTENSIONS:
            yield from self.expand_manifest(uri)
        elif suffix in SHARD_EXTENSIONS:
            yield from self.list_shard(uri, stat)
        elif suffix in self.extensions:
            yield VideoRef(uri=uri, size=stat["size"], version=stat["version"])
        else:
            raise SourceError(
                f"unsupported input: {uri} (expected a directory, prefix, glob, video, .tar "
                "shard, or a .parquet/.jsonl/.txt manifest)"
            )

    def iter_glob(self, pattern: str) -> Iterator[VideoRef]:
        """Matches are taken like a directory's contents: directories, videos and shards,
        each video once (a folder and a file inside it can both match)."""
        yield from _once_each(self.iter_matches(pattern))

    def iter_matches(self, pattern: str) -> Iterator[VideoRef]:
        matched = False
        if is_remote(pattern):
            for file_uri, size, version in self.remote_glob(pattern):
                matched = True
                yield from self.listed_file(file_uri, size, version)
        else:
            for path in globlib.iglob(pattern, recursive=True):
                stat = self.stat(path)
                if stat is None:
                    continue
                matched = True
                uri = os.path.abspath(path)
                if stat["type"] == "directory":
                    yield from self.walk(uri)
                else:
                    yield from self.listed_file(uri, stat["size"], stat["version"])
        if not matched:
            raise SourceError(f"input not found: no match for {pattern}")

    def remote_glob(self, pattern: str) -> Iterator[tuple[str, int, str]]:
        """Objects a glob names, from one paged listing under its literal prefix: keys that
        match, and keys inside a "folder" that matches."""
        bucket, _, key_pattern = strip_scheme(pattern).partition("/")
        literal = re.split(r"[*?\[]", key_pattern, maxsplit=1)[0]
        matches = _glob_regex(key_pattern).match
        for file_uri, size, version in self.s3_objects(bucket, literal.rpartition("/")[0]):
            key = file_uri[len(f"s3://{bucket}/") :]
            folders = itertools.accumulate(key.split("/")[:-1], lambda a, b: f"{a}/{b}")
            if matches(key) or any(matches(folder) for folder in folders):
                yield file_uri, size, version

    def walk(self, uri: str) -> Iterator[VideoRef]:
        """Every video and shard under a directory or prefix, as the listing goes."""
        for file_uri, size, version in self.files_under(uri):
            yield from self.listed_file(file_uri, size, version)

    def files_under(self, uri: str) -> Iterator[tuple[str, int, str]]:
        if is_remote(uri):
            bucket, _, key = strip_scheme(uri).partition("/")
            yield from self.s3_objects(bucket, key.rstrip("/"))
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
            for name in sorted(files):
                path = os.path.join(root, name)
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue  # dangling symlink, or removed mid-walk
                yield path, st.st_size, str(st.st_mtime_ns)

    def s3_objects(self, bucket: str, folder: str) -> Iterator[tuple[str, int, str]]:
        """`(uri, size, ETag)` of every object under `folder/` (the bucket when empty), page
        by page: one ListObjectsV2 request per 1,000 keys, retried like every S3 call."""
        from botocore.exceptions import BotoCoreError, ClientError

        prefix = f"{folder}/" if folder else ""
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    if not item["Key"].endswith("/"):  # "folder" marker objects
                        etag = str(item.get("ETag", "")).strip('"')
                        yield f"s3://{bucket}/{item['Key']}", int(item["Size"]), etag
        except (BotoCoreError, ClientError) as exc:
            raise SourceError(
                f"cannot list s3://{bucket}/{prefix}: {type(exc).__name__}: {exc}"
            ) from exc

    def s3(self) -> Any:
        with self._fs_lock:
            if self._s3 is None:
                self._s3 = s3_client(self.options)
        return self._s3

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

    def expand_manifest(self, manifest_uri: str) -> Iterator[VideoRef]:
        """Entries in manifest order, each video once, a page at a time: each page's entries
        are stat'ed concurrently (one HEAD each on S3), then the next page is read."""
        yield from _once_each(self.expand_entries(manifest_uri))

    def expand_entries(self, manifest_uri: str) -> Iterator[VideoRef]:
        listed = self.read_manifest_entries(manifest_uri)
        entries = (_resolve_entry(entry, manifest_uri) for entry in listed)
        with ThreadPoolExecutor(max_workers=_STAT_WORKERS) as pool:
            for page in in_pages(entries, _ENTRY_PAGE):
                for group in pool.map(self.expand_resolved, page):
                    yield from group

    def expand_resolved(self, entry: Entry) -> Iterable[VideoRef]:
        """One entry, stat'ed here (in the pool); a folder's walk is returned unstarted and
        runs as the listing reaches it."""
        return [entry.ref()] if isinstance(entry, Refused) else self.expand_entry(entry)

    def expand_entry(self, uri: str) -> Iterable[VideoRef]:
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

    def read_manifest_entries(self, manifest_uri: str) -> Iterator[Entry]:
        """The manifest's entries as it is read (never the whole text or table at once)."""
        suffix = _suffix(manifest_uri)
        with self.fs(manifest_uri).open(strip_scheme(manifest_uri), "rb") as fh:
            if suffix == ".parquet":
                yield from _parquet_entries(fh, manifest_uri)
            else:
                # Local file names need not be UTF-8: keep their bytes (surrogateescape).
                lines = (raw.decode("utf-8", errors="surrogateescape") for raw in fh)
                if suffix in JSONL_MANIFEST_EXTENSIONS:
                    yield from _jsonl_entries(lines, manifest_uri)
                else:
                    yield from _text_entries(lines)


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


def _parquet_entries(fh: Any, manifest_uri: str) -> Iterator[Entry]:
    """Per row, the first column with a value (as JSONL does); a row with none is refused.
    Read a batch at a time."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(fh)
    columns = [c for c in MANIFEST_COLUMNS if c in parquet.schema_arrow.names]
    if not columns:
        raise SourceError(
            f"manifest {manifest_uri} has none of the columns {list(MANIFEST_COLUMNS)}"
        )
    rows = (row for batch in parquet.iter_batches(columns=columns) for row in batch.to_pylist())
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


def in_pages(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` as lists of up to `size` (the last may be shorter), taken as they come."""
    iterator = iter(items)
    while page := list(itertools.islice(iterator, size)):
        yield page


def _once_each(refs: Iterable[VideoRef]) -> Iterator[VideoRef]:
    """`refs` without repeats of a uri (the first one listed wins), remembering a 16-byte
    digest per uri rather than the uri."""
    seen: set[bytes] = set()
    for ref in refs:
        raw = ref.uri.encode("utf-8", errors="surrogateescape")  # names need not be UTF-8
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        if digest not in seen:
            seen.add(digest)
            yield ref


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A key glob as a regex, with fsspec's meaning: `*` and `?` stay within a folder,
    `**` crosses folders (`**/` also matches no folder), `[...]` is a character class."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            close = pattern.index("]", i + 2)
            body = pattern[i + 1 : close]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = close + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")
