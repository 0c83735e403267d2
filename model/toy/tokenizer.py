"""A small Qwen2-format byte-level BPE tokenizer for the toy model, built with `tokenizers`.

The toy model must load through exactly the code path of real checkpoints (`load_tokenizer`:
AutoTokenizer, built-in classes only), so the tokenizer is a byte-level BPE like Qwen2's: NFC
normaliser, ByteLevel pre-tokenizer and decoder, no post-processor (the template adds no BOS),
and `<|endoftext|>` as the end-of-answer, eos and pad token. It is trained on everything the
model ever reads or writes (system prompt, user prompts, captions, tags, yes/no), so every
prompt is a short sequence and `" yes"` / `" no"` are single tokens, as `score_tags` needs.
"""

from __future__ import annotations

import itertools

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from model.processing import QWEN2_BASE_SYSTEM, STOP_TEXT, build_training_text
from model.prompts import CAPTION_PROMPT, TAG_PROMPT, TAXONOMY_QUESTION
from model.toy.world import COLOURS, MOTIONS, SHAPES, TAXONOMY, caption_for, make_clips, tags_for

VOCAB_SIZE = 512
TAG_SEPARATOR = ", "


def tag_answer(tags: tuple[str, ...] | list[str]) -> str:
    """The tag-list answer the model is trained to give: colour, shape, motion in that order."""
    return TAG_SEPARATOR.join(tags)


def answers() -> list[str]:
    """Every answer of the toy world: all 60 captions and tag lists, plus yes and no."""
    out: list[str] = []
    for clip in make_clips(seed=0, n=len(COLOURS) * len(SHAPES) * len(MOTIONS)):
        out.append(caption_for(clip.spec))
        out.append(tag_answer(tags_for(clip.spec)))
    return [*sorted(set(out)), "yes", "no"]


def training_corpus() -> list[str]:
    """Full training texts (template included) for every question and answer pair.

    Training the merges on the texts as the model sees them makes the template's words, the
    questions and the answers (with their leading spaces) single tokens where the vocabulary
    allows.
    """
    questions = [CAPTION_PROMPT, TAG_PROMPT] + [TAXONOMY_QUESTION.format(tag=t) for t in TAXONOMY]
    texts = [
        build_training_text(q, a).replace("<image>", " ")
        for q, a in itertools.product(questions, answers())
    ]
    return [QWEN2_BASE_SYSTEM, *texts]


def build_tokenizer(vocab_size: int = VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """Train the BPE merges (deterministic: the corpus is fixed) and wrap for transformers."""
    core = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=[STOP_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(training_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=STOP_TEXT,
        pad_token=STOP_TEXT,
        model_max_length=512,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
