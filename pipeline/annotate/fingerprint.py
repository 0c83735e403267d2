"""Identities of annotation work: prompts, settings, weights, and each clip's fingerprint
`<work key>:<clip_index>`. Nightly skips a video whose work key is committed; readers group a
video's clips by it.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pipeline.annotate.embedding import EMBED_METHOD
from pipeline.annotate.footage import FOOTAGE_METHOD
from pipeline.annotate.prompts import PromptSettings
from pipeline.annotate.settings import AnnotateSettings
from pipeline.core.records import short_hash
from pipeline.core.storage import StorageOptions


def prompt_id(prompts: PromptSettings) -> str:
    """Short hash of everything the model is asked: part of each clip's fingerprint."""
    return short_hash(prompts.model_dump(mode="json"), length=12)


def settings_key(settings: AnnotateSettings) -> str:
    """Hash of everything besides the video an annotation depends on: the model's weights
    (`settings.model_key`), the prompts, clip and sampling settings, token limits, dtype, and
    how embeddings and footage fingerprints are made (a new method re-embeds)."""
    return short_hash(
        settings.model_key, prompt_id(settings.prompts), asdict(settings.clips),
        asdict(settings.sampling), settings.max_new_tokens, settings.tag_max_new_tokens,
        settings.dtype, EMBED_METHOD, FOOTAGE_METHOD,
    )  # fmt: skip


def work_key(video_uri: str, video_size: int, video_version: str, settings_hash: str) -> str:
    """Identity of one video's annotation work: the video as listed + `settings_key`."""
    return short_hash(video_uri, int(video_size), str(video_version), settings_hash)


def fingerprint(row: dict[str, Any], settings: AnnotateSettings, settings_hash: str = "") -> str:
    """`<work key>:<clip_index>`: same video, model, prompts and settings, same clip.

    The work key prefix lets readers tell which clips belong to one annotation of a video
    (`pipeline.output.reading`); nightly runs skip videos whose work key is already committed.
    """
    key = work_key(
        row["video_uri"], row["video_size"], row["video_version"],
        settings_hash or settings_key(settings),
    )  # fmt: skip
    return f"{key}:{int(row['clip_index'])}"


def model_key(source: str, options: StorageOptions | None = None) -> str:
    """Identity of a checkpoint's weights, computed on the driver without loading the model.

    Local: sha256 of the weight files (as `model_id`); `s3://`: a hash of the weight
    objects' names, sizes and ETags (one LIST, no download).
    """
    from pathlib import Path

    from model.checkpoint import weight_files, weights_digest

    if source.startswith("s3://"):
        from pipeline.core.storage import filesystem, strip_scheme

        fs = filesystem(source, options)
        entries = fs.ls(strip_scheme(source), detail=True, refresh=True)
        weights = sorted(
            (e["name"].rsplit("/", 1)[-1], int(e["size"]), str(e.get("ETag", "")))
            for e in entries
            if e.get("type") == "file" and e["name"].endswith((".safetensors", ".bin"))
        )
        return f"{source.rstrip('/')}@{short_hash(weights, length=12)}"
    name = Path(source).name or "checkpoint"
    return f"{name}@{weights_digest(weight_files(Path(source)))[:12]}"
