"""The sizes of the two vectors every ok clip row carries, shared by the annotator that makes
them (`annotate/embedding.py`, `annotate/footage.py`) and the schema that stores them
(`output/schema.py`), which may not import each other.
"""

from __future__ import annotations

EMBED_DIM = 128
"""Dimensions of a clip's `embedding` (float16, unit length)."""

FOOTAGE_CELLS = 8
"""The footage fingerprint's grid: `FOOTAGE_CELLS` x `FOOTAGE_CELLS` cells of the mean frame."""

FOOTAGE_DIM = FOOTAGE_CELLS * FOOTAGE_CELLS * 3
"""Dimensions of a clip's `footage` fingerprint (float16, unit length or zeros)."""
