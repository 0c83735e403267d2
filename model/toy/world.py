"""Deterministic synthetic "toy world" clips with exact ground-truth captions and tags.

A clip is one coloured shape (circle, cross or triangle) that moves in a straight line (or
stays still) over a static, muted background. Everything is pure numpy and seeded, so a
``ClipSpec`` fully determines its pixels; this lets us train a tiny video LLM on it and
check generated captions against the truth end to end.

Geometry is stored in frame-relative units (fractions of the frame side, and total travel
over the whole clip) rather than pixels, so one spec renders the same scene at any frame
size and any frame count: a model sampling 8-16 of 48 frames sees the same full motion.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow")
# Silhouettes that differ inside a 16 px patch at 64 px input: a square and a circle of 9-17 px
# differ only in their corners, which a tiny tower learned to ~70% per frame; a cross's arms and
# a triangle's slanted edges are told apart from a circle's outline at ~90%+ (TRAINING.md).
SHAPES: tuple[str, ...] = ("circle", "cross", "triangle")
MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "still")
BACKGROUND_KINDS: tuple[str, ...] = ("solid", "gradient", "texture")

# Saturated prototypes, far (in RGB) from each other and from any muted background.
COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 235),
    "yellow": (235, 215, 40),
}

MOTION_TAGS: dict[str, str] = {
    "left": "moving left",
    "right": "moving right",
    "up": "moving up",
    "down": "moving down",
    "still": "still",
}

# Unit direction (dx, dy) in image coordinates (y grows downwards).
MOTION_VECTORS: dict[str, tuple[int, int]] = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
    "still": (0, 0),
}

_CAPTION_MOTION: dict[str, str] = {
    "left": "moves from right to left",
    "right": "moves from left to right",
    "up": "moves from bottom to top",
    "down": "moves from top to bottom",
    "still": "stays still",
}

_REVERSED: dict[str, str] = {
    "left": "right",
    "right": "left",
    "up": "down",
    "down": "up",
    "still": "still",
}

TAXONOMY: tuple[str, ...] = COLOURS + SHAPES + tuple(MOTION_TAGS[m] for m in MOTIONS)

# Sampling ranges, all as fractions of the frame side.
SIZE_FRAC_RANGE = (0.18, 0.30)  # shape bounding-box side
TRAVEL_FRAC_RANGE = (0.40, 0.62)  # total displacement over the clip (>= 35% with margin)
EDGE_MARGIN_FRAC = 0.02  # keeps anti-aliased edges off the frame border
NOISE_STD_RANGE = (0.0, 4.0)  # per-pixel Gaussian noise, in uint8 levels
COLOUR_JITTER = 12  # per-channel jitter of the fill colour around its prototype
TEXTURE_CELLS_RANGE = (3, 8)  # value-noise grid resolution for textured backgrounds


@dataclass(frozen=True)
class Background:
    """Static background; muted so the four shape colours stay unambiguous.

    kind: "solid" (colour_a), "gradient" (colour_a -> colour_b along ``angle`` radians) or
    "texture" (smooth value noise blending colour_a and colour_b, ``cells`` grid cells per side,
    seeded by the clip seed).
    """

    kind: str
    colour_a: tuple[int, int, int]
    colour_b: tuple[int, int, int]
    angle: float = 0.0
    cells: int = 4

    def __post_init__(self) -> None:
        if self.kind not in BACKGROUND_KINDS:
            raise ValueError(f"unknown background kind {self.kind!r}")


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to render one clip deterministically.

    Positions are the shape centre in frame-relative coordinates (0..1, y downwards) at the
    first frame; ``travel_frac`` is the total displacement, along the motion direction,
    between the first and last frame. ``seed`` drives the noise and background texture.
    """

    colour: str
    shape: str
    motion: str
    size_frac: float
    travel_frac: float
    start_x: float
    start_y: float
    rgb: tuple[int, int, int]
    background: Background
    noise_std: float
    seed: int

    def __post_init__(self) -> None:
        if self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}")
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}")
        if self.motion not in MOTIONS:
            raise ValueError(f"unknown motion {self.motion!r}")
        if self.motion == "still" and self.travel_frac != 0.0:
            raise ValueError("a still clip must have travel_frac == 0")

    def size_px(self, size: int) -> float:
        """Shape bounding-box side in pixels for a ``size`` x ``size`` frame."""
        return self.size_frac * size

    def speed_px(self, size: int, num_frames: int) -> float:
        """Speed in pixels per frame when rendered at this frame size and frame count."""
        return self.travel_frac * size / max(num_frames - 1, 1)

    def end_xy(self) -> tuple[float, float]:
        """Shape centre (frame-relative) at the last frame."""
        dx, dy = MOTION_VECTORS[self.motion]
        return self.start_x + dx * self.travel_frac, self.start_y + dy * self.travel_frac


@dataclass(frozen=True)
class ToyClip:
    """A spec with its ground-truth caption and tags."""

    spec: ClipSpec
    caption: str
    tags: tuple[str, ...]


def reverse_direction(motion: str) -> str:
    """Motion seen when the clip is played backwards (left<->right, up<->down)."""
    return _REVERSED[motion]


def caption_for(spec: ClipSpec) -> str:
    """Ground-truth caption in the fixed grammar, e.g. 'a red circle moves from left to right'."""
    return f"a {spec.colour} {spec.shape} {_CAPTION_MOTION[spec.motion]}"


def tags_for(spec: ClipSpec) -> tuple[str, ...]:
    """Ground-truth tags (colour, shape, motion tag); every tag is in TAXONOMY."""
    return (spec.colour, spec.shape, MOTION_TAGS[spec.motion])


def _muted_rgb(rng: np.random.Generator) -> tuple[int, int, int]:
    """A dark, low-saturation colour: grey level 20-105 plus a small per-channel tint."""
    grey = rng.uniform(20, 105)
    tint = rng.uniform(-18, 18, size=3)
    return tuple(int(v) for v in np.clip(np.round(grey + tint), 0, 255))  # type: ignore[return-value]


def _sample_background(rng: np.random.Generator) -> Background:
    """Solid, gradient or textured muted background, roughly a third each."""
    kind = BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))]
    return Background(
        kind=kind,
        colour_a=_muted_rgb(rng),
        colour_b=_muted_rgb(rng),
        angle=float(rng.uniform(0.0, 2.0 * np.pi)),
        cells=int(rng.integers(TEXTURE_CELLS_RANGE[0], TEXTURE_CELLS_RANGE[1] + 1)),
    )


def _jittered_rgb(colour: str, rng: np.random.Generator) -> tuple[int, int, int]:
    """Fill colour near the prototype so models learn a colour class, not one exact value."""
    base = np.asarray(COLOUR_RGB[colour], dtype=np.float64)
    rgb = np.clip(base + rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, size=3), 0, 255)
    return tuple(int(v) for v in rgb)  # type: ignore[return-value]


def _sample_start(
    rng: np.random.Generator, motion: str, size_frac: float, travel_frac: float
) -> tuple[float, float]:
    """Start centre such that the whole path keeps the shape inside the frame."""
    lo = size_frac / 2.0 + EDGE_MARGIN_FRAC
    hi = 1.0 - lo
    dx, dy = MOTION_VECTORS[motion]

    def axis_start(d: int) -> float:
        if d == 0:
            return float(rng.uniform(lo, hi))
        first = float(rng.uniform(lo, hi - travel_frac))  # leftmost/topmost point of path
        return first if d > 0 else first + travel_frac

    return axis_start(dx), axis_start(dy)


def sample_clip_spec(
    rng: np.random.Generator,
    *,
    colour: str | None = None,
    shape: str | None = None,
    motion: str | None = None,
) -> ClipSpec:
    """Random clip spec; colour/shape/motion are uniform unless pinned (used for balancing)."""
    colour = colour if colour is not None else COLOURS[int(rng.integers(len(COLOURS)))]
    shape = shape if shape is not None else SHAPES[int(rng.integers(len(SHAPES)))]
    motion = motion if motion is not None else MOTIONS[int(rng.integers(len(MOTIONS)))]
    size_frac = float(rng.uniform(*SIZE_FRAC_RANGE))
    max_travel = 1.0 - size_frac - 2.0 * EDGE_MARGIN_FRAC
    travel = float(rng.uniform(TRAVEL_FRAC_RANGE[0], min(TRAVEL_FRAC_RANGE[1], max_travel)))
    travel_frac = 0.0 if motion == "still" else travel
    start_x, start_y = _sample_start(rng, motion, size_frac, travel_frac)
    return ClipSpec(
        colour=colour,
        shape=shape,
        motion=motion,
        size_frac=size_frac,
        travel_frac=travel_frac,
        start_x=start_x,
        start_y=start_y,
        rgb=_jittered_rgb(colour, rng),
        background=_sample_background(rng),
        noise_std=float(rng.uniform(*NOISE_STD_RANGE)),
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in pixels, so sub-pixel shape positions render smoothly."""
    coords = np.arange(size, dtype=np.float32) + 0.5  # [S]
    return coords[None, :], coords[:, None]  # x: [1, S], y: [S, 1]


def _value_noise(cells: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth noise in [0, 1]: a random (cells+1)^2 grid bilinearly upsampled to size x size."""
    grid = rng.random((cells + 1, cells + 1))  # [C+1, C+1]
    pos = (np.arange(size) + 0.5) / size * cells  # [S]
    i0 = np.minimum(pos.astype(int), cells - 1)  # [S]
    f = pos - i0  # [S]
    f = f * f * (3.0 - 2.0 * f)  # smoothstep hides grid seams
    rows = grid[i0] * (1.0 - f)[:, None] + grid[i0 + 1] * f[:, None]  # [S, C+1]
    out = rows[:, i0] * (1.0 - f)[None, :] + rows[:, i0 + 1] * f[None, :]  # [S, S]
    return out


def render_background(bg: Background, size: int, seed: int) -> np.ndarray:
    """Static float32 background ``[size, size, 3]`` in 0..255."""
    a = np.asarray(bg.colour_a, dtype=np.float32)  # [3]
    b = np.asarray(bg.colour_b, dtype=np.float32)  # [3]
    if bg.kind == "solid":
        return np.broadcast_to(a, (size, size, 3)).astype(np.float32)  # [S, S, 3]
    if bg.kind == "gradient":
        x, y = _pixel_grid(size)
        proj = (x - size / 2) * np.cos(bg.angle) + (y - size / 2) * np.sin(bg.angle)  # [S, S]
        w = np.clip(proj / size + 0.5, 0.0, 1.0)  # [S, S]
    else:
        w = _value_noise(bg.cells, size, np.random.default_rng([seed, 1]))  # [S, S]
    w = w.astype(np.float32)[..., None]  # [S, S, 1]
    return a * (1.0 - w) + b * w  # [S, S, 3]


def _shape_sdf(shape: str, dx: np.ndarray, dy: np.ndarray, side: float) -> np.ndarray:
    """Approximate signed distance in pixels (negative inside) to the shape centred at 0."""
    half = side / 2.0
    if shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - half
    if shape == "cross":  # plus sign: two bars, each a third of the side thick
        arm = side / 6.0
        horizontal = np.maximum(np.abs(dx) - half, np.abs(dy) - arm)
        vertical = np.maximum(np.abs(dx) - arm, np.abs(dy) - half)
        return np.minimum(horizontal, vertical)
    # Upward-pointing isosceles triangle filling the side x side bounding box.
    inv = 1.0 / np.sqrt(5.0)  # normalises the outward edge normals (2, -1) and (-2, -1)
    right_edge = (2.0 * dx - dy - half) * inv  # through apex (0, -h) and (h, h)
    left_edge = (-2.0 * dx - dy - half) * inv  # through apex (0, -h) and (-h, h)
    bottom = dy - half
    return np.maximum(np.maximum(right_edge, left_edge), bottom)


def shape_centres(spec: ClipSpec, num_frames: int, size: int) -> np.ndarray:
    """Shape centre in pixels per frame, ``[T, 2]`` (x, y); constant-speed linear path."""
    t = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)  # [T]
    dx, dy = MOTION_VECTORS[spec.motion]
    x = (spec.start_x + dx * spec.travel_frac * t) * size  # [T]
    y = (spec.start_y + dy * spec.travel_frac * t) * size  # [T]
    return np.stack([x, y], axis=1)  # [T, 2]


def render_clip(spec: ClipSpec, num_frames: int, size: int) -> np.ndarray:
    """Render ``[T, size, size, 3]`` uint8 frames.

    Each frame is a crisp (anti-aliased) shape on the static background plus fresh noise;
    nothing in a single frame (no blur or trail) hints at the direction, only time does.
    """
    if num_frames < 1 or size < 16:
        raise ValueError("need num_frames >= 1 and size >= 16")
    x, y = _pixel_grid(size)  # [1, S], [S, 1]
    centres = shape_centres(spec, num_frames, size).astype(np.float32)  # [T, 2]
    dx = x[None] - centres[:, 0, None, None]  # [T, 1, S]
    dy = y[None] - centres[:, 1, None, None]  # [T, S, 1]
    sdf = _shape_sdf(spec.shape, dx, dy, spec.size_px(size))  # [T, S, S]
    cover = np.clip(0.5 - sdf, 0.0, 1.0)[..., None]  # [T, S, S, 1]
    bg = render_background(spec.background, size, spec.seed)  # [S, S, 3]
    fg = np.asarray(spec.rgb, dtype=np.float32)  # [3]
    frames = bg[None] * (1.0 - cover) + fg * cover  # [T, S, S, 3]
    if spec.noise_std > 0:
        noise_rng = np.random.default_rng([spec.seed, 2])
        noise = noise_rng.standard_normal(frames.shape, dtype=np.float32)  # [T, S, S, 3]
        frames = frames + spec.noise_std * noise
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)  # [T, S, S, 3]


def _balanced_combos(rng: np.random.Generator, n: int) -> list[tuple[str, str, str]]:
    """n (colour, shape, motion) triples: shuffled full passes over all 60 combos, so counts
    differ by at most one and every prefix of 60 covers each combination once."""
    combos = list(itertools.product(COLOURS, SHAPES, MOTIONS))
    out: list[tuple[str, str, str]] = []
    while len(out) < n:
        out.extend(combos[i] for i in rng.permutation(len(combos)))
    return out[:n]


def make_toy_clip(spec: ClipSpec) -> ToyClip:
    """Attach the ground-truth caption and tags to a spec."""
    return ToyClip(spec=spec, caption=caption_for(spec), tags=tags_for(spec))


def make_clips(seed: int, n: int) -> list[ToyClip]:
    """n clips, deterministic by seed, balanced over colour x shape x motion."""
    rng = np.random.default_rng(seed)
    return [
        make_toy_clip(sample_clip_spec(rng, colour=c, shape=s, motion=m))
        for c, s, m in _balanced_combos(rng, n)
    ]
