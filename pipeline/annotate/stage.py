"""Annotation as a `BatchStage`: decoded clip rows in, output rows out, one per row.

The model loads in `setup`, once per worker, and only there: importing this module imports
neither torch nor the model, so the driver and the writers that only name the stage stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.annotate.cuda_faults import CudaFault, exit_poisoned
from pipeline.annotate.settings import AnnotateSettings
from pipeline.core.stage import BatchStage, Resources, Row

if TYPE_CHECKING:
    from pipeline.annotate.annotator import Annotator

MAX_RESTARTS = 3
"""A worker that dies (out of memory, a lost node) is restarted this often, then the run
fails: a batch that keeps killing its worker must not loop forever."""


class AnnotateStage(BatchStage):
    """Caption and tag each `ok` clip; rows that arrive with an error pass through."""

    retries = MAX_RESTARTS
    loaded = ("_annotator",)
    _annotator: Annotator | None = None

    def __init__(
        self,
        settings: AnnotateSettings,
        *,
        batch_size: int,
        workers: int,
        resources: Resources,
    ) -> None:
        self.settings = settings
        self.batch_size = batch_size
        self.workers = workers
        self.resources = resources

    def setup(self) -> None:
        """Load the model where the driver placed this actor: on CUDA when Ray gave it a GPU
        (or refuse to start, in one line), else on the CPU; never a quiet fallback."""
        from pipeline.annotate.annotator import Annotator
        from pipeline.annotate.device import actor_device

        placement = None
        if not self.settings.device:
            placement = actor_device(self.resources.gpus, self.settings.dtype)
        self._annotator = Annotator(self.settings, placement)

    def process(self, item: list[Row]) -> list[Row]:
        """The batch's output rows; a poisoned CUDA context ends this worker instead
        (`cuda_faults.py`), so Ray restarts it and the batch is redone."""
        assert self._annotator is not None, "process() before setup()"
        try:
            return self._annotator.annotate(item)
        except CudaFault as fault:
            exit_poisoned(fault)
