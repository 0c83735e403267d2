"""What a GPU fault means for an annotate actor, by the exception's type (never its text).

Out of memory is a property of the batch: split it and go on. Any other CUDA error (an illegal
memory access, an ECC error, a launch failure) poisons the CUDA context of the whole process:
every later call fails too, so catching it per clip would turn every remaining clip of the run
into a `model_error` row. The actor must die instead; Ray restarts it (`AnnotateStage.retries`
times at most) and retries its batch, so the clips are redone on a healthy context.
"""

from __future__ import annotations

from typing import Literal, NoReturn

FaultKind = Literal["out_of_memory", "poisoned", "other"]

POISONED_EXIT_CODE = 70
"""Exit status of an actor that killed itself over a poisoned CUDA context (EX_SOFTWARE)."""


class CudaFault(RuntimeError):
    """A CUDA error that leaves the process unusable; the actor hosting it must exit."""


def fault_kind(err: BaseException) -> FaultKind:
    """`out_of_memory`, `poisoned` (a CUDA error other than out of memory) or `other`."""
    import torch

    if isinstance(err, torch.OutOfMemoryError):
        return "out_of_memory"
    if isinstance(err, torch.AcceleratorError | torch.cuda.CudaError):
        return "poisoned"
    return "other"


def release_cached_memory() -> None:
    """Give the allocator's cached blocks back after an out-of-memory, before the halves run."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def exit_poisoned(fault: CudaFault) -> NoReturn:
    """End this process at once, in one line: the CUDA context cannot be trusted, not even to
    unwind. Ray sees a dead actor, restarts it (bounded) and retries its batch."""
    import os
    import sys

    line = str(fault).splitlines()[0] if str(fault) else type(fault).__name__
    print(f"clipnote: annotate actor exits, its CUDA context is poisoned: {line}", file=sys.stderr)
    sys.stderr.flush()
    os._exit(POISONED_EXIT_CODE)
