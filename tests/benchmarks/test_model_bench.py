"""The model benchmark measures answers of a fixed length, reached without touching a logit."""

from __future__ import annotations

import torch

from benchmarks.model import TINY_TEXT, TINY_VISION, build_model, fixed_length_answers


def test_the_benchmarks_answers_are_exactly_the_asked_length_and_no_weight_changes():
    torch.manual_seed(0)
    model = build_model(TINY_TEXT, TINY_VISION, group=8, queries=16, device="cpu",
                        dtype=torch.float32)  # fmt: skip
    head = model.language_model.get_output_embeddings().weight.clone()
    answers = fixed_length_answers(model, batch=3, tokens=40)
    assert [len(row) for row in answers] == [40, 40, 40]
    torch.testing.assert_close(model.language_model.get_output_embeddings().weight, head)
