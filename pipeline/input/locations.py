"""Where data lives, written one way: local paths absolute, remote ones scheme-qualified.

Every location a run names (input, output, model) goes through `normalize_location` once, when
the config is validated, so nothing downstream depends on the working directory of whoever
started the run: commit records name files that exist wherever they are read from, and ids
derived from URIs are the same from any folder.
"""

from __future__ import annotations

import os
import re

from pipeline.input.names import _split_member

REMOTE_SCHEMES = ("s3",)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)


class LocationError(ValueError):
    """A location that cannot be used; the message says what to write instead."""


def normalize_location(value: str) -> str:
    """`s3://bucket/key` (scheme lower-cased, no trailing slash) or an absolute local path.

    `file://` and `~` are resolved; other schemes are refused rather than read as a local
    folder named `gs:`.
    """
    value = value.strip()
    if not value:
        raise LocationError("must not be empty")
    member = _split_member(value)
    if member is not None:  # `shard.tar#member`: the member name is opaque, never a path
        return f"{normalize_location(member[0])}#{member[1]}"
    match = _SCHEME.match(value)
    if match is None:
        return os.path.abspath(os.path.expanduser(value))
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "file":
        return os.path.abspath(os.path.expanduser(rest))
    if scheme not in REMOTE_SCHEMES:
        raise LocationError(f"unsupported scheme '{scheme}://' (use s3:// or a local path)")
    bucket = rest.split("/", 1)[0]
    if not bucket:
        raise LocationError(f"'{value}' names no bucket (expected s3://bucket/prefix)")
    return f"{scheme}://{rest.rstrip('/')}" if rest.rstrip("/") else f"{scheme}://{bucket}"
