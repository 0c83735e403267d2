"""The contract between a step of the pipeline and whatever runs it.

A step says what it needs (`Resources`), what it loads once (`setup`) and what it does to its
input (`process`); it never says how it is scheduled. `pipeline.ray_data` is the one place that
turns these into Ray Data operators, so a step can be unit-tested on a hand-built batch, and
the runner could change without touching the steps. The shape follows NeMo Curator's
`ProcessingStage` (resources, setup, process) and, for writing, Ray Data's `Datasink` lifecycle
(start, write, complete or failed), all of it on the driver: the runner, not Ray Data, decides
when a part closes, on its rows or its age.

- `RowStage`: one row in, the rows it makes out, streamed (decode: a planned video in, its clip
  rows out). Runs as tasks; cheap to set up.
- `BatchStage`: a batch of rows in, one row out per row in (annotate). Runs on `workers`
  long-lived workers, each set up once (the model loads once per worker, not per batch).
- `Writer` and `WriteLifecycle`: a batch of output rows becomes a stored part and a small
  write result; the driver starts the write, sees the results, and completes it or marks it
  failed.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pyarrow as pa

Row = dict[str, Any]

In = TypeVar("In")
Out = TypeVar("Out")
R = TypeVar("R")
D = TypeVar("D")


@dataclass(frozen=True)
class Resources:
    """What one worker of a step holds while it runs: the scheduler packs workers by this."""

    cpus: float = 1.0
    gpus: float = 0.0


class Stage(ABC, Generic[In, Out]):
    """One step of a video's walk, independent of who schedules it."""

    resources: Resources = Resources()
    retries: int = 0
    """How often the work of a lost worker (crash, node gone) is tried again: a task is
    re-run, a long-lived worker restarted. Finite, so a poison input cannot loop forever."""

    loaded: tuple[str, ...] = ()
    """Attributes `setup` fills (a model): left behind when the stage is copied to a worker."""

    _is_set_up: bool = False

    def setup(self) -> None:
        """Load what is expensive (a model, a codec) once per worker, before any `process`."""

    def ready(self) -> Stage[In, Out]:
        """This stage, set up: runners call this, not `setup`, so it runs once per copy."""
        if not self._is_set_up:
            self.setup()
            self._is_set_up = True
        return self

    def __getstate__(self) -> dict[str, Any]:
        """A copy shipped to a worker starts unset: it sets itself up there, and what `setup`
        loaded here (if anything) does not travel."""
        state = dict(self.__dict__)
        for name in ("_is_set_up", *self.loaded):
            state.pop(name, None)
        return state

    @abstractmethod
    def process(self, item: In) -> Out:
        """The step's work on one input: pure of scheduling, so a test can call it."""


class RowStage(Stage[Row, Iterator[Row]]):
    """One row in, its rows out as they are made (a task never holds all of them)."""


class BatchStage(Stage[list[Row], list[Row]]):
    """`batch_size` rows in, one output row per row in, in order, on `workers` workers."""

    batch_size: int = 1
    workers: int = 1


class Writer(ABC, Generic[R]):
    """The part side of writing: a batch of output rows becomes one stored part. The runner
    gathers the batch, closing it at `batch_size` rows or `part_seconds` after its first row."""

    batch_size: int = 1
    """Rows per part, at most."""
    part_seconds: float = math.inf
    """How long a part may stay open, from its first row (whatever its rows): the bound on
    how long written work waits to be committable."""

    @abstractmethod
    def write(self, batch: pa.Table) -> R:
        """Store `batch`; return the small result that is all the driver sees of it."""


class WriteLifecycle(ABC, Generic[D]):
    """The driver side of writing: claims the output, ends it with a record or abandons it."""

    @abstractmethod
    def on_write_start(self) -> None:
        """Before any part is written: claim the right to write (or refuse)."""

    @abstractmethod
    def on_write_complete(self, details: D) -> str:
        """After every part is written and committed: record the whole; its location."""

    @abstractmethod
    def on_write_failed(self, error: BaseException) -> None:
        """The write stopped on `error`: keep what is committed, let a later attempt go on."""
