"""Where an annotate actor runs the model, decided once on the driver and enforced on the actor.

The published model is 3.6B parameters: on a CPU it takes hours per clip, so clipnote never
falls back to one quietly. A checkpoint other than the toy asks Ray for a GPU per actor unless
the config says `resources.gpus_per_actor: 0`; an actor Ray gives a GPU uses CUDA or refuses
to start, in one line; and the dtype is settled here ("auto": bf16 on a GPU, fp32 on a CPU),
so the run record can say which device and dtype every actor used. Pure: no torch, no Ray.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.core.errors import EnvironmentFailure

TOY_SOURCE = "toy"
"""`model.source` of the toy checkpoint shipped in the package, the one model a CPU may host
without being asked to."""


class GpuUnusable(EnvironmentFailure):
    """An actor that Ray gave a GPU cannot use CUDA (a CPU torch build, no driver, bf16 refused)."""


class NoGpuHere(EnvironmentFailure):
    """The run asks for GPUs on a Ray that has none and cannot gain any (a local Ray)."""


@dataclass(frozen=True)
class ActorDevice:
    """The device and dtype every annotate actor of a run uses (all alike, by construction)."""

    device: str
    """`cuda` or `cpu`."""
    dtype: str
    """`bfloat16`, `float16` or `float32`."""


def actor_gpus(
    requested: float | None, model_source: str, cluster_has_gpus: Callable[[], bool]
) -> float:
    """GPUs per annotate actor. `requested` (the config's `gpus_per_actor`) wins when set; left
    unset, the toy runs where the cluster allows and every other checkpoint asks for a GPU,
    which an autoscaler with GPU `min_workers: 0` then brings up (the cluster having none yet
    at start is the normal state, not a reason to run on the CPU)."""
    if requested is not None:
        return float(requested)
    if model_source != TOY_SOURCE:
        return 1.0
    return 1.0 if cluster_has_gpus() else 0.0


def refuse_endless_wait(gpus: float, cluster_gpus: float, can_gain_gpus: bool, source: str) -> None:
    """A local Ray never gains a GPU, so an actor asking for one would wait for ever: say so
    in one line instead, before any work. A cluster (RAY_ADDRESS) may still bring GPU nodes
    up (`min_workers: 0`), so there the wait is the autoscaler's to end."""
    if gpus > 0 and cluster_gpus == 0 and not can_gain_gpus:
        raise NoGpuHere(
            f"model.source {source} runs on a GPU ({gpus:g} per annotate actor) and this "
            "machine's Ray has none, so the run would wait for ever: run it on a GPU machine "
            "or cluster (RAY_ADDRESS), or set resources.gpus_per_actor: 0 to run it on CPUs "
            "(hours per clip at full size)"
        )


def actor_device(gpus: float, dtype: str) -> ActorDevice:
    """The device an actor with `gpus` GPUs uses, and the dtype `dtype` ("auto" or a name)
    resolves to there."""
    device = "cuda" if gpus > 0 else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if device == "cuda" else "float32"
    return ActorDevice(device, dtype)


def check_usable(
    wanted: ActorDevice, cuda_available: bool, bf16_supported: bool, torch_version: str
) -> None:
    """Refuse to start, in one line, an actor that cannot run as `wanted`."""
    if wanted.device != "cuda":
        return
    if not cuda_available:
        build = "a CPU-only build" if "+cpu" in torch_version else "a build that finds no GPU"
        raise GpuUnusable(
            f"annotate actor was given a GPU but CUDA is unusable (torch {torch_version}, "
            f"{build}): install the CUDA build of torch on GPU nodes, or set "
            "resources.gpus_per_actor: 0 to run on CPUs"
        )
    if wanted.dtype == "bfloat16" and not bf16_supported:
        raise GpuUnusable(
            "annotate actor's GPU has no bfloat16: set model.dtype: float16 for this GPU"
        )
