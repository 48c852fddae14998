"""112x112 face crops from a box smoothed over time, so the crop does not jitter.

Landmark boxes move by a pixel or two from frame to frame even on a still
head; cropping each frame at its own box makes the training frames shake.
The crop box is a square around the landmark box centre, its centre and side
smoothed with a Gaussian over time (within the kept span only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CROP_SIZE = 112


@dataclass(frozen=True)
class CropConfig:
    """How the crop box is derived from the landmark boxes."""

    scale: float = 1.4  # crop side / longer side of the landmark box (adds hair and chin room)
    smooth_sigma: float = 2.0  # Gaussian sigma in frames for the box centre and side; 0 = none
    size: int = CROP_SIZE

    def __post_init__(self) -> None:
        if self.scale <= 0 or self.smooth_sigma < 0 or self.size < 1:
            raise ValueError(f"bad CropConfig {self}")


def smooth_boxes(bboxes: np.ndarray, config: CropConfig = CropConfig()) -> np.ndarray:
    """Square crop boxes (T, 4) x0, y0, x1, y1 from landmark boxes (T, 4), smoothed over time."""
    from scipy.ndimage import gaussian_filter1d

    boxes = np.asarray(bboxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.isfinite(boxes).all():
        raise ValueError(f"smooth_boxes: expected finite (T, 4) boxes, got shape {boxes.shape}")
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    side = np.max(boxes[:, 2:] - boxes[:, :2], axis=1) * config.scale
    if config.smooth_sigma > 0 and len(boxes) > 1:
        centre = gaussian_filter1d(centre, config.smooth_sigma, axis=0, mode="nearest")
        side = gaussian_filter1d(side, config.smooth_sigma, mode="nearest")
    half = side[:, None] / 2.0
    return np.concatenate([centre - half, centre + half], axis=1)


def crop(rgb: np.ndarray, box: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The ``box`` region of ``rgb`` resized to (size, size, 3); outside the image is black."""
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box)
    scale = size / max(x1 - x0, 1e-6)
    # One affine warp crops, pads and resizes; INTER_AREA-like quality from the
    # pre-blur is not needed at these scales, linear keeps it fast.
    matrix = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], dtype=np.float64)
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


class RunCrops:
    """The crops of the longest run of valid frames, cut while the frames stream past (one decoding pass).

    Fed every frame of a clip in order, with its landmark box where the frame
    is valid and None where it is not. Each run's boxes are smoothed within the
    run only, as :func:`smooth_boxes` smooths a span: the same values, since the
    Gaussian's weights reach ``radius`` frames either side, so a frame is cut
    once the ``radius`` frames after it are seen or its run has ended. The crops
    of the run under way and of the longest run finished (the earliest on ties,
    as :func:`pipeline.spans.longest_run` chooses) go to unnamed temporary files
    (:class:`_SpilledCrops`): an hour of a steady face is 3.4 GB of crops, which
    take disk, not memory. Memory holds at most ``radius`` decoded frames.
    """

    def __init__(self, config: CropConfig = CropConfig()) -> None:
        self.config = config
        # scipy's gaussian_filter1d reaches int(truncate * sigma + 0.5) frames, truncate = 4
        self.radius = int(4.0 * config.smooth_sigma + 0.5) if config.smooth_sigma > 0 else 0
        self._frame = 0  # frames fed so far
        self._boxes: list[tuple[float, float, float, float]] = []  # of the run under way
        self._waiting: list[np.ndarray] = []  # its frames not cut yet, the last len(_waiting) of it
        self._crops = _SpilledCrops(config.size)  # its crops so far
        self._best_start = 0
        self._best = _SpilledCrops(config.size)  # the crops of the longest run finished

    def add(self, rgb: np.ndarray, box: tuple[float, float, float, float] | None) -> None:
        """The next frame, with its landmark box if it is valid."""
        if box is None:
            self._end_run()
        else:
            self._boxes.append(box)
            self._waiting.append(rgb)
            self._cut(run_ended=False)
        self._frame += 1

    def finish(self) -> tuple[int, int, np.ndarray]:
        """``(start, end, crops)`` of the longest run (end exclusive; (0, 0, no crops) without a valid frame).

        ``crops`` is a read-only (T, S, S, 3) map of its temporary file, which
        :func:`warehouse.features.write_shard` writes frame by frame.
        """
        self._end_run()
        self._crops.close()
        return self._best_start, self._best_start + self._best.n, self._best.array()

    def _cut(self, run_ended: bool) -> None:
        """Cut the waiting frames whose smoothed box is known."""
        n = len(self._boxes)
        while self._waiting and (run_ended or n - 1 - self._crops.n >= self.radius):
            i = self._crops.n
            lo, hi = max(0, i - self.radius), min(n, i + self.radius + 1)
            box = smooth_boxes(np.array(self._boxes[lo:hi]), self.config)[i - lo]
            self._crops.append(crop(self._waiting.pop(0), box, self.config.size))

    def _end_run(self) -> None:
        """Close the run under way (its frames are the last ``len(_boxes)`` fed), keeping it if the longest."""
        self._cut(run_ended=True)
        if self._crops.n > self._best.n:
            self._best, self._crops, self._best_start = self._crops, self._best, self._frame - len(self._boxes)
        self._crops.clear()
        self._boxes = []


class _SpilledCrops:
    """Crops of one size appended to an unnamed temporary file (gone when closed, or with the process)."""

    def __init__(self, size: int) -> None:
        import tempfile

        self.size = size
        self.n = 0
        self._file = tempfile.TemporaryFile()

    def append(self, image: np.ndarray) -> None:
        self._file.write(np.ascontiguousarray(image, np.uint8).data)
        self.n += 1

    def clear(self) -> None:
        self._file.seek(0)
        self._file.truncate()
        self.n = 0

    def close(self) -> None:
        self._file.close()

    def array(self) -> np.ndarray:
        """The crops as a read-only (n, size, size, 3) array mapped from the file (the file may be closed then)."""
        shape = (self.n, self.size, self.size, 3)
        if not self.n:
            return np.empty(shape, np.uint8)
        self._file.flush()
        return np.memmap(self._file, np.uint8, mode="r", shape=shape)
