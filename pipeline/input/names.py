"""Names as data: URIs normalised once, names that are not UTF-8 made readable, tar member
references split, and the small iteration helpers listing shares.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import TypeVar
from urllib.parse import quote

from pipeline.core.records import VideoRef
from pipeline.core.storage import is_remote

_MEMBER_SEP = "#"

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
SHARD_EXTENSIONS: tuple[str, ...] = (".tar",)
TEXT_MANIFEST_EXTENSIONS: tuple[str, ...] = (".txt", ".lst", ".list")
JSONL_MANIFEST_EXTENSIONS: tuple[str, ...] = (".jsonl", ".ndjson")
MANIFEST_EXTENSIONS: tuple[str, ...] = (
    ".parquet",
    *JSONL_MANIFEST_EXTENSIONS,
    *TEXT_MANIFEST_EXTENSIONS,
)


T = TypeVar("T")


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
    fields = (ref.uri, ref.version, ref.member, ref.shard_uri, ref.problem)
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
        problem=None if ref.problem is None else _readable(ref.problem),
    )


def _split_member(uri: str) -> tuple[str, str] | None:
    """(`shard.tar`, member) for a `shard.tar#member` URI, as written by `list_videos`."""
    marker = f"{SHARD_EXTENSIONS[0]}{_MEMBER_SEP}"
    index = uri.lower().find(marker)
    if index < 0:
        return None
    cut = index + len(SHARD_EXTENSIONS[0])
    return uri[:cut], uri[cut + len(_MEMBER_SEP) :]


def resolve_shard_part(uri: str, resolve: Callable[[str], str]) -> str:
    """`resolve` applied to a URI, or only to the shard of a `shard.tar#member` URI: the member
    name is opaque and comes back byte for byte. Normalised as a path, `shard.tar#../x.mp4`
    once read `x.mp4` beside the shard, and `shard.tar#a/../b.mp4` was not found."""
    member = _split_member(uri)
    if member is None:
        return resolve(uri)
    return f"{resolve(member[0])}{_MEMBER_SEP}{member[1]}"


def _normalize(uri: str) -> str:
    """S3 URIs as given (minus a trailing slash); local paths absolute, so ids don't depend
    on the working directory of whoever listed them. A member name is kept as it is."""
    member = _split_member(uri)
    if member is not None:
        return f"{_normalize(member[0])}{_MEMBER_SEP}{member[1]}"
    if is_remote(uri):
        return uri.rstrip("/")
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    return os.path.abspath(os.path.expanduser(uri))


def _suffix(name: str) -> str:
    return posixpath.splitext(name)[1].lower()


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
