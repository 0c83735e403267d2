"""The annotate stage on hand-built rows with the shipped toy checkpoint (no Ray, no mocks).

Ground truth comes from the toy world (`caption_for`/`tags_for` of each clip's spec), never
from the model under test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from model.toy.world import TAXONOMY, make_clips, render_clip
from pipeline.annotate.annotator import Annotator
from pipeline.annotate.embedding import EMBED_METHOD
from pipeline.annotate.footage import footage_fingerprint
from pipeline.annotate.prompts import PromptSettings
from pipeline.annotate.settings import AnnotateSettings
from pipeline.core.vectors import EMBED_DIM
from tests.pipeline.annotate.toy import toy_settings

pytestmark = pytest.mark.slow  # the real toy model: seconds per test on 2 cores

SEED = 5151  # not a training seed (TRAINING.md: 1000+ train, 2000+ held out)
CLIPS = make_clips(SEED, 3)


def _settings(**prompts: Any) -> AnnotateSettings:
    return toy_settings(
        "annotate-test", PromptSettings(**prompts), dtype="float32", device="cpu",
        max_new_tokens=24, tag_max_new_tokens=16,
    )  # fmt: skip


def _row(index: int, frames: np.ndarray, status: str = "ok", error: str | None = None):
    return {
        "video_uri": f"file:///videos/{index}.mp4", "video_size": 1000 + index,
        "video_version": "1", "video_id": f"vid{index}", "clip_index": 0,
        "status": status, "error": error, "frames": frames,
    }  # fmt: skip


def _good(index: int) -> dict[str, Any]:
    return _row(index, render_clip(CLIPS[index].spec, 8, 64))


@pytest.fixture(scope="module")
def generate() -> Annotator:
    return Annotator(_settings(tag_mode="generate"))


def test_a_clip_that_breaks_the_model_is_one_model_error_row(generate):
    """A batch with a clip the model cannot take (4 channels): that clip alone is a
    `model_error` row naming why; the others are captioned right, in their own rows; a row that
    arrived as a decode error passes through untouched.

    Catches: the whole batch marked model_error, a lost batch, results shifted onto the wrong
    rows after the one-by-one retry, and error rows sent to the model.
    """
    bad = _row(9, np.zeros((8, 64, 64, 4), np.uint8))
    decode_error = _row(7, np.zeros((0, 64, 64, 3), np.uint8), "decode_error", "moov atom missing")
    rows = [_good(0), bad, decode_error, _good(1), _good(2)]
    out = generate.annotate(rows)

    assert [r["video_id"] for r in out] == ["vid0", "vid9", "vid7", "vid1", "vid2"]
    assert [r["status"] for r in out] == ["ok", "model_error", "decode_error", "ok", "ok"]
    assert out[1]["caption"] is None and "frames must be" in out[1]["error"]
    assert out[1]["error"].startswith("ValueError: ")
    assert out[2]["error"] == "moov atom missing" and out[2]["caption"] is None
    assert out[2]["tags"] == [] and out[2]["generated_tokens"] == 0
    for row, clip in zip([out[0], out[3], out[4]], CLIPS, strict=True):
        assert row["error"] is None
        assert row["caption"] == clip.caption
        assert set(row["tags"]) == set(clip.tags)
        assert "frames" not in row


def test_annotated_rows_carry_an_embedding_and_a_footage_fingerprint(generate):
    """Each ok row: a unit-length float16 embedding of EMBED_DIM values keyed by method and
    weights, and the footage fingerprint of its own frames; a decode-error row and a clip the
    model could not take hold nulls. Two clips of different toy scenes are not the same
    embedding (the pooled features follow the clip, not a constant)."""
    bad = _row(9, np.zeros((8, 64, 64, 4), np.uint8))
    decode_error = _row(7, np.zeros((0, 64, 64, 3), np.uint8), "decode_error", "unreadable")
    rows = [_good(0), bad, decode_error, _good(1)]
    out = generate.annotate(rows)
    for row, source in ((out[0], rows[0]), (out[3], rows[3])):
        vector = np.asarray(row["embedding"])
        assert vector.dtype == np.float16 and vector.shape == (EMBED_DIM,)
        assert float(np.linalg.norm(vector.astype(np.float32))) == pytest.approx(1.0, abs=2e-3)
        assert row["embedding_key"] == f"{EMBED_METHOD}@{generate.settings.model_key}"
        assert np.array_equal(row["footage"], footage_fingerprint(source["frames"]))
    for row in (out[1], out[2]):
        assert row["embedding"] is None and row["embedding_key"] is None
        assert row["footage"] is None
    cosine = float(np.asarray(out[0]["embedding"], np.float32) @ np.asarray(out[3]["embedding"]))
    assert cosine < 0.999


def test_model_error_rows_keep_their_identity(generate):
    """The error row still says which clip it is, so nothing is lost from the output."""
    bad = _row(9, np.zeros((8, 64, 64, 4), np.uint8))
    (out,) = generate.annotate([bad])
    assert out["status"] == "model_error"
    assert out["clip_id"] == "vid9:0" and out["video_uri"] == "file:///videos/9.mp4"
    assert out["fingerprint"] and out["model_id"].startswith("checkpoint@")


def test_tag_mode_none_generates_no_tags():
    """Catches a tag pass run (or tags filled in) when the config says none."""
    none = Annotator(_settings(tag_mode="none"))
    gen = Annotator(_settings(tag_mode="generate"))
    rows = [_good(0), _good(1)]
    out_none, out_gen = none.annotate(rows), gen.annotate(rows)
    for n, g, clip in zip(out_none, out_gen, CLIPS[:2], strict=True):
        assert n["status"] == "ok" and n["caption"] == clip.caption == g["caption"]
        assert n["tags"] == [] and n["tag_scores"] == []
        assert g["tags"] and g["tag_scores"] == []
        # none counts only the caption's tokens: fewer than caption + tag answer
        assert 0 < n["generated_tokens"] < g["generated_tokens"]


@pytest.mark.parametrize("method", ["listing", "yes_no"])
def test_taxonomy_mode_scores_every_tag_in_order_and_thresholds(method):
    """Catches scores missing or out of taxonomy order, tags not following the threshold, and
    tags not sorted by score."""
    taxonomy = tuple(TAXONOMY)
    rows = [_good(1)]
    low = Annotator(_settings(tag_mode="taxonomy", taxonomy=taxonomy, taxonomy_method=method,
                              taxonomy_threshold=0.0)).annotate(rows)  # fmt: skip
    high = Annotator(_settings(tag_mode="taxonomy", taxonomy=taxonomy, taxonomy_method=method,
                               taxonomy_threshold=1.0)).annotate(rows)  # fmt: skip
    for row in low:
        assert row["status"] == "ok"
        assert [s["tag"] for s in row["tag_scores"]] == list(taxonomy)
        scores = [s["score"] for s in row["tag_scores"]]
        assert all(0.0 <= s <= 1.0 for s in scores)
        by_score = sorted(row["tag_scores"], key=lambda s: -s["score"])
        assert row["tags"] == [s["tag"] for s in by_score]  # threshold 0: every tag
    for lo, hi in zip(low, high, strict=True):
        assert hi["tag_scores"] == lo["tag_scores"]  # the threshold does not change scores
        assert hi["tags"] == [s["tag"] for s in hi["tag_scores"] if s["score"] >= 1.0]


def test_taxonomy_listing_ranks_the_true_tags_first():
    """The default method on the shipped checkpoint: each clip's three true tags outrank the
    rest (truth from the toy world)."""
    annotator = Annotator(_settings(tag_mode="taxonomy", taxonomy=tuple(TAXONOMY)))
    out = annotator.annotate([_good(0), _good(1), _good(2)])
    for row, clip in zip(out, CLIPS, strict=True):
        ranked = [s["tag"] for s in sorted(row["tag_scores"], key=lambda s: -s["score"])]
        assert set(ranked[:3]) == set(clip.tags), (ranked, clip.tags)
