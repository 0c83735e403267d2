"""The only module that knows Ray Data: stages become operators, nothing more.

Decode runs as CPU tasks, one per video (`flat_map`: one video row in, its clip rows out);
annotation runs in an actor pool that loads the model once per actor. Ray Data's streaming
executor keeps both busy and bounds what is in flight.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from .annotate import AnnotateSettings, Annotator
from .decode import DecodeSettings, decode_video
from .records import VideoRef
from .schema import rows_to_table


def decode_row(row: dict[str, Any], settings: DecodeSettings) -> list[dict[str, Any]]:
    return decode_video(VideoRef.from_row(row), settings)


class AnnotateActor:
    """Ray actor around `Annotator`: numpy batch in, `clips`-schema Arrow table out."""

    def __init__(self, settings: AnnotateSettings) -> None:
        self.annotator = Annotator(settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        size = len(next(iter(batch.values())))
        rows = [{key: values[i] for key, values in batch.items()} for i in range(size)]
        return rows_to_table(self.annotator.annotate(rows))


def cluster_has_gpus() -> bool:
    import ray

    return ray.cluster_resources().get("GPU", 0) > 0


def build_dataset(
    refs: list[VideoRef],
    decode: DecodeSettings,
    annotate: AnnotateSettings,
    *,
    batch_size: int,
    decode_cpus: float,
    actors: int,
    cpus_per_actor: float,
    gpus_per_actor: float,
) -> Any:
    """The lazy dataset of output rows for `refs` (nothing runs until it is consumed)."""
    import ray

    items = [ref.to_row() for ref in refs]
    ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
    ds = ds.flat_map(decode_row, fn_kwargs={"settings": decode}, num_cpus=decode_cpus)
    return ds.map_batches(
        AnnotateActor,
        fn_constructor_kwargs={"settings": annotate},
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus_per_actor,
        num_gpus=gpus_per_actor,
    )


def iter_tables(ds: Any) -> Iterator[pa.Table]:
    """Output rows as Arrow tables, streamed to the driver as they complete."""
    yield from ds.iter_batches(batch_format="pyarrow", batch_size=None)
