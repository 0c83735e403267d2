"""The user's clipnote cache on local disk: `$CLIPNOTE_CACHE`, `~/.cache/clipnote` by default.

What lives there is only ever a copy of something kept elsewhere (a checkpoint's digest, a
remote checkpoint, a `similar` index a reader may not save under the output), so deleting it
costs time, never data. `model/cache.py` is the same rule on the model's side of the layering
(`model/` never imports `pipeline/`, and `core` imports no other room)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """The cache's root folder (not created here)."""
    base = os.environ.get("CLIPNOTE_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "clipnote"
