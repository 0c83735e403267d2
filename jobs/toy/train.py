"""Train a tiny TinyLLaVA-Video on the toy world, on the CPU, and save it as a checkpoint.

    python -m jobs.toy.train --out model/toy/checkpoint --seed 0

The model is the published architecture at toy scale (SigLIP tower -> group resampler -> Qwen2
LM, byte-level BPE tokenizer), saved with `save_checkpoint` so `load_model` reads it exactly as
it reads real checkpoints. Training frames take the inference path's pixels: 48-frame 128x128
clips, 8 frames at `uniform_indices(0, 48, 8)` (jittered by a frame or two), resized by the
model's `FrameProcessor` to uint8 and normalised by `model.processor`. A share of the clips make
a real H.264 round trip through `pipeline.decode`; the rest get a cheap imitation of its
artefacts (chroma subsampling, noise, a small level shift), so MP4 input is no surprise.

Every sample is one of the three questions clipnote asks (caption, tag list, yes/no per
taxonomy tag) in the published template; the loss covers only the answer and its
`<|endoftext|>`. Frames are reversed for a share of the samples with the direction in the
answer swapped, which doubles the motion evidence and teaches that time order is what matters.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from model import TinyLlavaVideo, parse_config, save_checkpoint
from model.processing import FrameProcessor, build_prompt, build_training_text, tokenize_with_video
from model.prompts import CAPTION_PROMPT, TAG_PROMPT, TAXONOMY_QUESTION
from model.toy.tokenizer import build_tokenizer, tag_answer
from model.toy.world import (
    COLOURS,
    MOTIONS,
    SHAPES,
    TAXONOMY,
    ClipSpec,
    ToyClip,
    _pixel_grid,
    _shape_sdf,
    caption_for,
    make_clips,
    render_background,
    reverse_direction,
    shape_centres,
    tags_for,
)
from pipeline.clips.sampling import uniform_indices
from pipeline.decode.video import open_video, read_frames, resize_frames

CLIP_FRAMES = 48  # frames per rendered clip, as the evaluation videos
RENDER_SIZE = 128  # rendered frame side, as the evaluation videos
NUM_FRAMES = 8  # frames the model samples per clip
TRAIN_SEED_OFFSET = 1_000  # training clips: make_clips(1000 + seed); never 12345 (evaluation)
HELDOUT_SEED_OFFSET = 2_000  # held-out check at the end of training: make_clips(2000 + seed)
TASKS = ("caption", "tags", "yesno")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run; written into TRAINING.md by hand from the log."""

    seed: int = 0
    steps: int = 3000
    batch_size: int = 16
    lr: float = 2e-3
    min_lr_frac: float = 0.05
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    pool_size: int = 3000
    h264_fraction: float = 0.15
    frame_jitter: int = 2
    reverse_prob: float = 0.5
    task_probs: tuple[float, float, float] = (0.4, 0.2, 0.4)
    heldout_clips: int = 120
    log_every: int = 50
    threads: int = 2
    save_dtype: str = "float16"
    latent_init_std: float = 0.02
    vision_lr_mult: float = 1.0
    aux_weight: float = 1.0
    aux_until: float = 0.7
    tower_steps: int = 2000
    tower_batch_frames: int = 64
    probe_steps: int = 600
    probe_lr: float = 1e-3
    image_size: int = 64
    patch_size: int = 16


def toy_config_dict(vocab_size: int, image_size: int = 64, patch_size: int = 16) -> dict:
    """The published-format config.json body of the toy model.

    SigLIP 64px / patch 16 gives 16 patches per frame, 15 after the published `patch`
    selection; 8 frames in 8 groups give the resampler one frame per group and 4 queries each.
    The `clipnote` block tells the pipeline how many frames this model was trained on.
    """
    return {
        "architectures": ["TinyLlavaForConditionalGeneration"],
        "model_type": "tinyllava",
        "llm_model_name_or_path": "clipnote/toy-qwen2",
        "vision_model_name_or_path": "clipnote/toy-siglip",
        "connector_type": "groupresampler",
        "num_queries": 32,
        "group": 8,
        "num_resampler_layers": 2,
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "patch",
        "tokenizer_padding_side": "right",
        "tokenizer_model_max_length": 512,
        "text_config": {
            "model_type": "qwen2",
            "vocab_size": vocab_size,
            "hidden_size": 128,
            "intermediate_size": 384,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            "rope_theta": 10000.0,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": True,
        },
        "vision_config": {
            "model_type": "siglip_vision_model",
            "hidden_size": 96,
            "intermediate_size": 384,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "image_size": image_size,
            "patch_size": patch_size,
        },
        "clipnote": {"num_frames": NUM_FRAMES},
    }


def build_model(
    seed: int, latent_init_std: float = 0.02, image_size: int = 64, patch_size: int = 16
) -> TinyLlavaVideo:
    """A freshly initialised toy model with its trained tokenizer (init seeded).

    The resampler's latents start small instead of the published unit normal: with unit
    latents the connector's output is ~90% the same for every clip, and the LM learns the
    text prior long before it learns to look at the video.
    """
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    config = parse_config(toy_config_dict(len(tokenizer), image_size, patch_size))
    model = TinyLlavaVideo(config, tokenizer)
    with torch.no_grad():
        model.connector.latents.normal_(0.0, latent_init_std)
    return model


# --- frames ---------------------------------------------------------------------------------


def render_frames(spec: ClipSpec, indices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 `[T, 128, 128, 3]`: frames `indices` of `render_clip(spec, 48, 128)`.

    Same geometry and colours as `render_clip` (pixel-identical when the spec has no noise),
    computed for the sampled frames only: rendering all 48 frames costs 6x more. The noise is
    drawn from `rng` rather than the spec's seed, with the same level.
    """
    x, y = _pixel_grid(RENDER_SIZE)
    centres = shape_centres(spec, CLIP_FRAMES, RENDER_SIZE)[indices].astype(np.float32)
    dx = x[None] - centres[:, 0, None, None]  # [T, 1, S]
    dy = y[None] - centres[:, 1, None, None]  # [T, S, 1]
    sdf = _shape_sdf(spec.shape, dx, dy, spec.size_px(RENDER_SIZE))  # [T, S, S]
    cover = np.clip(0.5 - sdf, 0.0, 1.0)[..., None]  # [T, S, S, 1]
    bg = render_background(spec.background, RENDER_SIZE, spec.seed)  # [S, S, 3]
    frames = bg[None] * (1.0 - cover) + np.asarray(spec.rgb, dtype=np.float32) * cover
    if spec.noise_std > 0:
        frames = frames + spec.noise_std * rng.standard_normal(frames.shape, dtype=np.float32)
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)


def sampled_indices(rng: np.random.Generator, jitter: int) -> np.ndarray:
    """The inference sampling `uniform_indices(0, 48, 8)`, each index moved by <= `jitter`."""
    base = uniform_indices(0, CLIP_FRAMES, NUM_FRAMES).astype(np.int64)
    moved = base + rng.integers(-jitter, jitter + 1, size=base.shape)
    return np.clip(moved, 0, CLIP_FRAMES - 1)


def fake_codec(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A cheap stand-in for H.264 yuv420p on uint8 `[T, H, W, 3]`.

    Chroma averaged over 2x2 blocks (yuv420p), a small global level shift (the decoder's
    limited-range rounding measured about -1 level) and mild noise, so the model does not rely
    on pixel values that the codec would change.
    """
    f = frames.astype(np.float32)
    luma = f @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # [T, H, W]
    chroma = f - luma[..., None]  # [T, H, W, 3]
    t, h, w, _ = chroma.shape
    pooled = chroma.reshape(t, h // 2, 2, w // 2, 2, 3).mean(axis=(2, 4))
    chroma = pooled.repeat(2, axis=1).repeat(2, axis=2)
    out = luma[..., None] + chroma + rng.uniform(-2.5, 1.0)
    out = out + rng.uniform(0.0, 2.0) * rng.standard_normal(out.shape, dtype=np.float32)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def real_codec(frames: np.ndarray, processor: FrameProcessor, workdir: Path) -> np.ndarray:
    """H.264 round trip of uint8 `[T, 128, 128, 3]` through `pipeline.decode`, resized."""
    from model.toy.video_io import write_mp4

    path = workdir / "clip.mp4"
    write_mp4(frames, path, fps=24)
    reader = open_video(path.read_bytes())
    return read_frames(reader, np.arange(len(frames)), processor)


def render_pool(
    clips: list[ToyClip], cfg: TrainConfig, processor: FrameProcessor, rng: np.random.Generator
) -> np.ndarray:
    """uint8 `[N, 8, 64, 64, 3]` model-input frames for every training clip (rendered once)."""
    size = processor.size
    pool = np.zeros((len(clips), NUM_FRAMES, size, size, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        for i, clip in enumerate(clips):
            frames = render_frames(clip.spec, sampled_indices(rng, cfg.frame_jitter), rng)
            if rng.random() < cfg.h264_fraction:
                pool[i] = real_codec(frames, processor, Path(tmp))
            else:
                pool[i] = resize_frames(fake_codec(frames, rng), processor)
    return pool


def jitter_colours(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-clip gain and offset per channel, small enough to keep the four colours apart."""
    gain = rng.uniform(0.94, 1.06, size=3).astype(np.float32)
    offset = rng.uniform(-5.0, 5.0, size=3).astype(np.float32)
    out = frames.astype(np.float32) * gain + offset
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


# --- text -----------------------------------------------------------------------------------


def reversed_clip(clip: ToyClip) -> ToyClip:
    """The clip played backwards: same scene, opposite motion, captions and tags to match."""
    spec = replace(clip.spec, motion=reverse_direction(clip.spec.motion))
    return ToyClip(spec=spec, caption=caption_for(spec), tags=tags_for(spec))


def sample_question(clip: ToyClip, cfg: TrainConfig, rng: np.random.Generator) -> tuple[str, str]:
    """One (question, answer) pair: caption, tag list, or a balanced yes/no taxonomy check."""
    task = TASKS[int(rng.choice(len(TASKS), p=cfg.task_probs))]
    if task == "caption":
        return CAPTION_PROMPT, clip.caption
    if task == "tags":
        return TAG_PROMPT, tag_answer(clip.tags)
    positive = rng.random() < 0.5
    choices = [t for t in TAXONOMY if (t in clip.tags) == positive]
    tag = choices[int(rng.integers(len(choices)))]
    return TAXONOMY_QUESTION.format(tag=tag), "yes" if positive else "no"


def encode_example(question: str, answer: str, tokenizer, num_queries: int):
    """Token ids (with the -200 placeholder) and targets over the spliced sequence.

    Targets are -100 except on the answer tokens, so the loss teaches answers, not prompts.
    """
    ids = tokenize_with_video(build_training_text(question, answer), tokenizer)
    prompt = tokenize_with_video(build_prompt(question), tokenizer)
    if ids[: len(prompt)] != prompt:
        raise ValueError(f"answer {answer!r} merges into the prompt's last token")
    targets = [-100] * (len(prompt) - 1 + num_queries) + ids[len(prompt) :]
    return ids, targets


# --- training -------------------------------------------------------------------------------


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then cosine decay to `min_lr_frac` of the peak."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * cosine)


class ExampleCache:
    """`encode_example` memoised: the toy world has only a few hundred distinct pairs."""

    def __init__(self, tokenizer, num_queries: int) -> None:
        self.tokenizer = tokenizer
        self.num_queries = num_queries
        self.cache: dict[tuple[str, str], tuple[list[int], list[int]]] = {}

    def __call__(self, question: str, answer: str) -> tuple[list[int], list[int]]:
        key = (question, answer)
        if key not in self.cache:
            self.cache[key] = encode_example(question, answer, self.tokenizer, self.num_queries)
        return self.cache[key]


class AttributeProbe(torch.nn.Module):
    """Linear read-out of colour, shape and motion from the connector's output tokens.

    A training aid only (never saved): from random init the LM learns the text prior first and
    the video's tokens, which at init differ little between clips, get almost no gradient; the
    probe gives the vision tower and resampler a direct signal so they encode what the answers
    need, and the LM then learns to read it. Its weight decays to zero at 70% of the run.
    """

    def __init__(self, num_queries: int, hidden: int, vision_hidden: int) -> None:
        super().__init__()
        self.appearance = torch.nn.Linear(hidden, len(COLOURS) + len(SHAPES))
        self.motion = torch.nn.Linear(num_queries * hidden, len(MOTIONS))
        self.frame_appearance = torch.nn.Linear(vision_hidden, len(COLOURS) + len(SHAPES))

    def logits(self, video_embeds: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-attribute logits from the tokens as the LM's first RMSNorm will see them.

        Reading RMS-normalised tokens makes the probe reward variation between clips that is
        large next to the part every clip shares (the position encoding), which is what the
        LM can pick up.
        """
        normed = video_embeds * torch.rsqrt(video_embeds.pow(2).mean(-1, keepdim=True) + 1e-6)
        colour, shape = self.appearance(normed.mean(1)).split([len(COLOURS), len(SHAPES)], 1)
        motion = self.motion(normed.flatten(1) / normed.shape[1] ** 0.5)
        return colour, shape, motion

    def frame_loss(self, frame_feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Colour and shape from each frame's mean tower feature `[B, T, Dv]`.

        Shape is the slow attribute: read through the resampler the tower gets a weak,
        indirect gradient, and per-frame shape accuracy stalls; a direct read-out on every
        frame gives the tower eight labelled views per clip.
        """
        colour, shape = self.frame_appearance(frame_feats).split([len(COLOURS), len(SHAPES)], -1)
        t = frame_feats.shape[1]
        return F.cross_entropy(
            colour.flatten(0, 1), labels[:, 0].repeat_interleave(t)
        ) + F.cross_entropy(shape.flatten(0, 1), labels[:, 1].repeat_interleave(t))

    def loss(
        self, video_embeds: torch.Tensor, frame_feats: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        parts = self.logits(video_embeds)
        clip_loss = sum(F.cross_entropy(p, labels[:, i]) for i, p in enumerate(parts))
        return clip_loss + self.frame_loss(frame_feats, labels)

    def frame_shape_accuracy(self, frame_feats: torch.Tensor, labels: torch.Tensor) -> float:
        shape = self.frame_appearance(frame_feats)[..., len(COLOURS) :]  # [B, T, S]
        return float((shape.argmax(-1) == labels[:, 1, None]).float().mean())

    def accuracy(self, video_embeds: torch.Tensor, labels: torch.Tensor) -> list[float]:
        parts = self.logits(video_embeds)
        return [float((p.argmax(1) == labels[:, i]).float().mean()) for i, p in enumerate(parts)]


def attribute_labels(clip: ToyClip) -> list[int]:
    return [
        COLOURS.index(clip.spec.colour),
        SHAPES.index(clip.spec.shape),
        MOTIONS.index(clip.spec.motion),
    ]


def make_batch(
    model: TinyLlavaVideo,
    encode: ExampleCache,
    clips: list[ToyClip],
    pool: np.ndarray,
    cfg: TrainConfig,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, list[list[int]], torch.Tensor, torch.Tensor]:
    """Normalised videos `[B, 8, 3, 64, 64]`, prompt rows, right-padded targets `[B, L]` and
    attribute labels `[B, 3]`."""
    frames, rows, targets, labels = [], [], [], []
    for i in rng.integers(len(clips), size=cfg.batch_size):
        clip, video = clips[i], jitter_colours(pool[i], rng)
        if rng.random() < cfg.reverse_prob:
            clip, video = reversed_clip(clip), video[::-1]
        question, answer = sample_question(clip, cfg, rng)
        ids, target = encode(question, answer)
        frames.append(np.ascontiguousarray(video))
        rows.append(ids)
        targets.append(target)
        labels.append(attribute_labels(clip))
    longest = max(len(t) for t in targets)
    target = torch.full((len(targets), longest), -100, dtype=torch.long)
    for i, t in enumerate(targets):
        target[i, : len(t)] = torch.tensor(t)
    return model.processor(np.stack(frames)), rows, target, torch.tensor(labels)


def encode_for_training(
    model: TinyLlavaVideo, videos: torch.Tensor, connector: bool = True
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """`encode_video` split in two: video tokens `[B, Q, D]` (None without the connector)
    and each frame's mean tower feature `[B, T, Dv]` for the frame-level probe.

    The tower is called here rather than through `encode_video`, whose slicing returns a
    contiguous copy: the frame means would sum in another order, and the shipped run would
    no longer reproduce bit for bit."""
    b, t = videos.shape[:2]
    feats = model.vision_tower(videos.flatten(0, 1))  # [B*T, P, Dv]
    frame_feats = feats.mean(1).reshape(b, t, -1)  # [B, T, Dv]
    if not connector:
        return None, frame_feats
    video_embeds = model.connector(feats.reshape(b, t * feats.shape[1], feats.shape[2]))
    return video_embeds, frame_feats


def loss_on(model: TinyLlavaVideo, video_embeds: torch.Tensor, rows, target: torch.Tensor):
    """Next-token cross entropy on the answer tokens, through the inference embedding path.

    Averaged over tokens. (Averaging per sample first, to give one-word yes/no answers the
    weight of a caption, was tried: captions fell to 0.64 and yes/no did not improve.)
    """
    batch = model.embed_prompts(rows, video_embeds, padding_side="right")
    out = model.language_model(
        inputs_embeds=batch.embeds,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        use_cache=False,
    )
    logits = out.logits[:, :-1].float()
    return F.cross_entropy(logits.flatten(0, 1), target[:, 1:].flatten(), ignore_index=-100)


def param_groups(model: TinyLlavaVideo, cfg: TrainConfig) -> list[dict]:
    """Decay on matrices only; the vision side may get a larger learning rate."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        visual = not name.startswith("language_model.")
        decay = param.ndim >= 2 and "latents" not in name
        groups.setdefault((visual, decay), []).append(param)
    return [
        {
            "params": params,
            "weight_decay": cfg.weight_decay if decay else 0.0,
            "lr_mult": cfg.vision_lr_mult if visual else 1.0,
        }
        for (visual, decay), params in sorted(groups.items())
    ]


def frame_batch(
    pool: np.ndarray, clips: list[ToyClip], size: int, rng: np.random.Generator
) -> tuple[np.ndarray, torch.Tensor]:
    """uint8 `[N, 1, S, S, 3]` single frames from `size` different clips, colour-jittered and
    mirrored left-right at random (colour and shape survive both), with their labels."""
    picks = rng.integers(len(clips), size=size)
    frames = pool[picks, rng.integers(pool.shape[1], size=size)]  # [N, S, S, 3]
    flip = rng.random(size) < 0.5
    frames[flip] = frames[flip, :, ::-1]
    frames = np.stack([jitter_colours(f, rng) for f in frames])[:, None]
    return frames, torch.tensor([attribute_labels(clips[i]) for i in picks])


def pretrain_tower(
    model: TinyLlavaVideo,
    probe: AttributeProbe,
    clips: list[ToyClip],
    pool: np.ndarray,
    cfg: TrainConfig,
    rng: np.random.Generator,
) -> None:
    """Stage 0: the vision tower alone learns colour and shape from single frames.

    Shape is learned from the number of different clips seen, not frames: eight frames of
    one clip teach little more than one. One frame from each of 64 clips per step costs half
    of a 16-clip step and shows four times as many clips.
    """
    params = [*model.vision_tower.parameters(), *probe.frame_appearance.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.probe_lr, weight_decay=0.01)
    start = time.time()
    for step in range(cfg.tower_steps):
        for group in opt.param_groups:
            group["lr"] = cfg.probe_lr * min(1.0, (step + 1) / 50)
        frames, labels = frame_batch(pool, clips, cfg.tower_batch_frames, rng)
        _, frame_feats = encode_for_training(model, model.processor(frames), connector=False)
        loss = probe.frame_loss(frame_feats, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % cfg.log_every == 0:
            acc = probe.frame_shape_accuracy(frame_feats.detach(), labels)
            print(
                f"tower {step + 1:5d}  loss {loss.item():.3f}  frame shape acc {acc:.2f}  "
                f"{time.time() - start:5.0f}s",
                flush=True,
            )


def heldout_frames(
    model: TinyLlavaVideo, cfg: TrainConfig, indices: np.ndarray, rng: np.random.Generator
) -> tuple[list[ToyClip], list[np.ndarray]]:
    """The held-out clips (never trained on) and their frames `indices`, through the codec
    imitation, at model size: uint8 `[len(indices), S, S, 3]` per clip."""
    clips = make_clips(HELDOUT_SEED_OFFSET + cfg.seed, cfg.heldout_clips)
    frames = [
        resize_frames(fake_codec(render_frames(c.spec, indices, rng), rng), model.processor)
        for c in clips
    ]
    return clips, frames


def frame_shape_heldout(model: TinyLlavaVideo, probe: AttributeProbe, cfg: TrainConfig) -> float:
    """Per-frame shape accuracy of the stage-0 read-out on clips never trained on."""
    index = uniform_indices(0, CLIP_FRAMES, NUM_FRAMES)[[NUM_FRAMES // 2]]
    clips, frames = heldout_frames(model, cfg, index, np.random.default_rng([cfg.seed, 5]))
    frames = np.stack(frames)  # [N, 1, S, S, 3]
    labels = torch.tensor([attribute_labels(c) for c in clips])
    with torch.no_grad():
        _, frame_feats = encode_for_training(model, model.processor(frames), connector=False)
    return probe.frame_shape_accuracy(frame_feats, labels)


def pretrain_connector(
    model: TinyLlavaVideo,
    probe: AttributeProbe,
    encode: ExampleCache,
    clips: list[ToyClip],
    pool: np.ndarray,
    cfg: TrainConfig,
    rng: np.random.Generator,
) -> None:
    """Stage 1 (as LLaVA trains its connector first): vision tower + resampler + probe only.

    No LM pass, so a step costs a fraction of a full one; afterwards the video tokens already
    tell colour, shape and motion apart and the LM has something to read from its first step.
    """
    params = [p for n, p in model.named_parameters() if not n.startswith("language_model.")]
    opt = torch.optim.AdamW([*params, *probe.parameters()], lr=cfg.probe_lr, weight_decay=0.01)
    start = time.time()
    for step in range(cfg.probe_steps):
        for group in opt.param_groups:
            group["lr"] = cfg.probe_lr * min(1.0, (step + 1) / 50)
        videos, _, _, labels = make_batch(model, encode, clips, pool, cfg, rng)
        embeds, frame_feats = encode_for_training(model, videos)
        loss = probe.loss(embeds, frame_feats, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % cfg.log_every == 0:
            acc = probe.accuracy(embeds.detach(), labels)
            acc.append(probe.frame_shape_accuracy(frame_feats.detach(), labels))
            print(
                f"probe {step + 1:5d}  loss {loss.item():.3f}  acc colour/shape/motion "
                f"{acc[0]:.2f}/{acc[1]:.2f}/{acc[2]:.2f}  frame shape {acc[3]:.2f}  "
                f"{time.time() - start:5.0f}s",
                flush=True,
            )


def train(model: TinyLlavaVideo, clips: list[ToyClip], pool: np.ndarray, cfg: TrainConfig):
    """Stage 1 (connector), then everything with AdamW, warmup + cosine; returns LM losses."""
    rng = np.random.default_rng([cfg.seed, 3])
    res = model.config.resampler
    probe = AttributeProbe(res.num_queries, res.hidden_size, res.vision_hidden_size)
    model.train()
    pretrain_tower(model, probe, clips, pool, cfg, rng)
    print(
        f"tower held-out frame shape acc {frame_shape_heldout(model, probe, cfg):.3f}", flush=True
    )
    pretrain_connector(
        model, probe, ExampleCache(model.tokenizer, res.num_queries), clips, pool, cfg, rng
    )
    groups = [*param_groups(model, cfg), {"params": list(probe.parameters()), "lr_mult": 1.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98))
    encode = ExampleCache(model.tokenizer, model.config.resampler.num_queries)
    model.train()
    losses: list[float] = []
    aux_losses: list[float] = []
    start = time.time()
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg) * group["lr_mult"]
        videos, rows, target, labels = make_batch(model, encode, clips, pool, cfg, rng)
        video_embeds, frame_feats = encode_for_training(model, videos)
        loss = loss_on(model, video_embeds, rows, target)
        aux_w = cfg.aux_weight * max(0.0, 1.0 - step / max(1.0, cfg.aux_until * cfg.steps))
        aux = probe.loss(video_embeds, frame_feats, labels) if aux_w > 0 else torch.zeros(())
        opt.zero_grad(set_to_none=True)
        (loss + aux_w * aux).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        losses.append(loss.item())
        aux_losses.append(aux.item())
        if (step + 1) % cfg.log_every == 0 or step == 0:
            recent = float(np.mean(losses[-cfg.log_every :]))
            recent_aux = float(np.mean(aux_losses[-cfg.log_every :]))
            print(
                f"step {step + 1:5d}  loss {recent:.4f}  aux {recent_aux:.3f} (w {aux_w:.2f})  "
                f"lr {lr_at(step, cfg):.2e}  "
                f"{time.time() - start:6.0f}s",
                flush=True,
            )
    model.eval()
    return losses


# --- held-out check and saving --------------------------------------------------------------


def heldout_check(model: TinyLlavaVideo, cfg: TrainConfig) -> dict[str, float]:
    """Caption/tag exact match and yes/no accuracy on fresh clips (fake codec, no MP4).

    The full MP4 evaluation is `jobs.toy.evaluate`; this is the quick look at the end of
    training that goes into the log.
    """
    from jobs.toy.evaluate import score_taxonomy_accuracy

    base = uniform_indices(0, CLIP_FRAMES, NUM_FRAMES)
    clips, frames = heldout_frames(model, cfg, base, np.random.default_rng([cfg.seed, 4]))
    video = model.encode_frames(frames)
    captions = [a.text for a in model.caption(video, CAPTION_PROMPT)]
    tags = [t.tags for t in model.generate_tags(video, TAG_PROMPT)]
    scores = model.score_tags(video, list(TAXONOMY), TAXONOMY_QUESTION, method="yes_no").scores
    return {
        "caption_exact": float(
            np.mean([p == c.caption for p, c in zip(captions, clips, strict=True)])
        ),
        "tags_exact": float(np.mean([p == list(c.tags) for p, c in zip(tags, clips, strict=True)])),
        "taxonomy_acc": score_taxonomy_accuracy(scores, [c.tags for c in clips]),
    }


def save(model: TinyLlavaVideo, out: Path, dtype: str) -> Path:
    """`save_checkpoint` in `dtype` (float16 halves the file; loading casts back)."""
    model.to(getattr(torch, dtype))
    save_checkpoint(model, out)
    model.to(torch.float32)
    return out


def parse_args(argv: list[str] | None = None) -> tuple[Path, TrainConfig]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("model/toy/checkpoint"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--pool-size", type=int, default=TrainConfig.pool_size)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--vision-lr-mult", type=float, default=TrainConfig.vision_lr_mult)
    parser.add_argument("--latent-init-std", type=float, default=TrainConfig.latent_init_std)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument("--aux-weight", type=float, default=TrainConfig.aux_weight)
    parser.add_argument("--tower-steps", type=int, default=TrainConfig.tower_steps)
    parser.add_argument("--probe-steps", type=int, default=TrainConfig.probe_steps)
    parser.add_argument("--log-every", type=int, default=TrainConfig.log_every)
    parser.add_argument("--probe-lr", type=float, default=TrainConfig.probe_lr)
    parser.add_argument("--image-size", type=int, default=TrainConfig.image_size)
    parser.add_argument("--patch-size", type=int, default=TrainConfig.patch_size)
    args = parser.parse_args(argv)
    cfg = TrainConfig(
        seed=args.seed,
        steps=args.steps,
        pool_size=args.pool_size,
        batch_size=args.batch_size,
        lr=args.lr,
        vision_lr_mult=args.vision_lr_mult,
        latent_init_std=args.latent_init_std,
        threads=args.threads,
        log_every=args.log_every,
        aux_weight=args.aux_weight,
        tower_steps=args.tower_steps,
        probe_steps=args.probe_steps,
        probe_lr=args.probe_lr,
        image_size=args.image_size,
        patch_size=args.patch_size,
    )
    return args.out, cfg


def main(argv: list[str] | None = None) -> None:
    out, cfg = parse_args(argv)
    torch.set_num_threads(cfg.threads)
    started = time.time()
    print(f"config {json.dumps(asdict(cfg))}", flush=True)
    model = build_model(cfg.seed, cfg.latent_init_std, cfg.image_size, cfg.patch_size)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model {n_params / 1e6:.2f}M parameters, vocab {len(model.tokenizer)}", flush=True)
    clips = make_clips(TRAIN_SEED_OFFSET + cfg.seed, cfg.pool_size)
    pool = render_pool(clips, cfg, model.processor, np.random.default_rng([cfg.seed, 2]))
    print(f"rendered {len(clips)} training clips in {time.time() - started:.0f}s", flush=True)
    losses = train(model, clips, pool, cfg)
    print(f"final loss (mean of last {cfg.log_every}) {np.mean(losses[-cfg.log_every :]):.4f}")
    print(f"held-out {json.dumps(heldout_check(model, cfg))}", flush=True)
    save(model, out, cfg.save_dtype)
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"saved {out} ({size / 1e6:.1f} MB) after {time.time() - started:.0f}s wall", flush=True)


if __name__ == "__main__":
    main()
