"""Annotation as a `BatchStage`: decoded clip rows in, output rows out, one per row.

The model loads in `setup`, once per worker, and only there: importing this module imports
neither torch nor the model, so the driver and the writers that only name the stage stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
        from pipeline.annotate.annotator import Annotator

        self._annotator = Annotator(self.settings)

    def process(self, item: list[Row]) -> list[Row]:
        assert self._annotator is not None, "process() before setup()"
        return self._annotator.annotate(item)
