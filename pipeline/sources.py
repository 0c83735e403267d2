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
from typing import Any

from pipeline.records import VideoRef
from pipeline.storage import (
    StorageOptions,
    filesystem,
    is_remote,
    read_bytes,
    read_range,
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
    return _dedupe_sorted(refs)


def read_video(ref: VideoRef, options: StorageOptions | None = None) -> bytes:
    """The video's bytes in one read: the whole object, or one byte range of its shard.

    A short read means the object changed or was truncated since listing; that is an error
    rather than bytes that no longer match the listed version.
    """
    if ref.version == MISSING_VERSION:
        raise SourceError(f"object not found: {ref.uri}")
    if ref.version.endswith(UNREADABLE_TAR_SUFFIX):
        raise SourceError(f"not a readable (uncompressed) tar shard: {ref.uri}")
    source = ref.shard_uri if ref.shard_uri is not None else ref.uri
    try:
        if ref.shard_uri is not None:
            data = read_range(ref.shard_uri, int(ref.offset or 0), ref.size, options)
        else:
            data = read_bytes(ref.uri, options)
    except FileNotFoundError as exc:
        raise SourceError(f"object not found: {source}") from exc
    except IsADirectoryError as exc:
        raise SourceError(f"not a file: {source}") from exc
    except OSError as exc:
        raise SourceError(f"cannot read {ref.uri}: {type(exc).__name__}") from exc
    if ref.size >= 0 and len(data) != ref.size:
        raise SourceError(
            f"size changed since listing: {ref.uri} (listed {ref.size}, read {len(data)} bytes)"
        )
    return data


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
        for root, _dirs, files in os.walk(uri):
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
        entries = _unique(
            _resolve_entry(e, manifest_uri) for e in self.read_manifest_entries(manifest_uri)
        )
        with ThreadPoolExecutor(max_workers=_STAT_WORKERS) as pool:
            groups = list(pool.map(self.expand_entry, entries))
        return [ref for group in groups for ref in group]

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

    def read_manifest_entries(self, manifest_uri: str) -> list[str]:
        suffix = _suffix(manifest_uri)
        with self.fs(manifest_uri).open(strip_scheme(manifest_uri), "rb") as fh:
            if suffix == ".parquet":
                return _parquet_entries(fh, manifest_uri)
            text = fh.read().decode("utf-8")
        if suffix in JSONL_MANIFEST_EXTENSIONS:
            return _jsonl_entries(text, manifest_uri)
        return _text_entries(text)


def _parquet_entries(fh: Any, manifest_uri: str) -> list[str]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(fh)
    names = parquet.schema_arrow.names
    column = next((c for c in MANIFEST_COLUMNS if c in names), None)
    if column is None:
        raise SourceError(
            f"manifest {manifest_uri} has none of the columns {list(MANIFEST_COLUMNS)}"
        )
    values = parquet.read(columns=[column]).column(column).to_pylist()
    return [str(v).strip() for v in values if v is not None and str(v).strip()]


def _jsonl_entries(text: str, manifest_uri: str) -> list[str]:
    entries: list[str] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SourceError(f"manifest {manifest_uri} line {line_no}: invalid JSON") from exc
        key = next((k for k in MANIFEST_COLUMNS if isinstance(row, dict) and row.get(k)), None)
        if key is None:
            raise SourceError(
                f"manifest {manifest_uri} line {line_no}: expected an object with one of "
                f"{list(MANIFEST_COLUMNS)}"
            )
        entries.append(str(row[key]).strip())
    return entries


def _text_entries(text: str) -> list[str]:
    """One URI per line; only whole lines starting with `#` are comments (`#` marks members)."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _resolve_entry(entry: str, manifest_uri: str) -> str:
    """Absolute URI for a manifest entry; relative ones are relative to the manifest's folder."""
    if is_remote(entry):
        return entry
    entry = os.path.expanduser(entry.removeprefix("file://"))
    if os.path.isabs(entry):
        return os.path.normpath(entry)
    if is_remote(manifest_uri):
        folder = posixpath.dirname(strip_scheme(manifest_uri))
        return "s3://" + posixpath.normpath(posixpath.join(folder, entry))
    return os.path.normpath(os.path.join(os.path.dirname(manifest_uri), entry))


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
