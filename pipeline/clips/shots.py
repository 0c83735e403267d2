"""Shot boundaries from PySceneDetect's content detector (optional extra `clipnote[shots]`).

Shot detection has to look at every frame, so it runs on a second, downscaled decord reader
over the same in-memory bytes (the object is still read once). Frames go to the detector in
batches; only cut times come back.
"""

from __future__ import annotations

import io

import numpy as np

DETECT_WIDTH = 160
BATCH = 64


def _require_scenedetect():
    try:
        import scenedetect
    except ImportError as err:  # the extra is optional; say how to get it
        raise RuntimeError(
            "clips.mode 'shots' needs PySceneDetect: pip install 'clipnote[shots]'"
        ) from err
    return scenedetect


def _small_reader(data: bytes, width: int, height: int):
    import decord

    scale = DETECT_WIDTH / max(width, 1)
    size = (max(2, round(width * scale) // 2 * 2), max(2, round(height * scale) // 2 * 2))
    return decord.VideoReader(io.BytesIO(data), width=size[0], height=size[1], num_threads=1)


def detect_cuts(
    data: bytes, fps: float, width: int, height: int, threshold: float, min_shot_s: float
) -> list[float]:
    """Times (s) at which a new shot starts, excluding 0, in increasing order."""
    scenedetect = _require_scenedetect()
    from scenedetect import FrameTimecode
    from scenedetect.detectors import ContentDetector

    reader = _small_reader(data, width, height)
    detector = ContentDetector(threshold=threshold, min_scene_len=max(1, round(min_shot_s * fps)))
    cuts: list[float] = []
    for start in range(0, len(reader), BATCH):
        indices = list(range(start, min(start + BATCH, len(reader))))
        frames = reader.get_batch(indices).asnumpy()[..., ::-1]  # RGB -> BGR, as OpenCV reads
        for index, frame in zip(indices, frames, strict=True):
            found = detector.process_frame(FrameTimecode(index, fps), np.ascontiguousarray(frame))
            cuts.extend(_seconds(c, fps) for c in found)
    del scenedetect
    return sorted(c for c in set(cuts) if c > 0)


def _seconds(timecode, fps: float) -> float:
    frame = timecode.frame_num if hasattr(timecode, "frame_num") else int(timecode)
    return round(frame / fps, 6)
