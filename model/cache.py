"""The user's clipnote cache on local disk, as the model package sees it: `$CLIPNOTE_CACHE`,
`~/.cache/clipnote` by default. `model/` never imports `pipeline/`, so this is the model's
side of the same rule as `pipeline.core.cache.cache_home`."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """The cache's root folder (not created here)."""
    base = os.environ.get("CLIPNOTE_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "clipnote"
