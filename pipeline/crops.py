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
