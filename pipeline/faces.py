"""Face landmarks per frame with mediapipe's face mesh, tracked within a clip.

The face mesh runs in video mode (it tracks landmarks from frame to frame and
only re-detects when it loses a face) and is allowed to find up to
``max_faces`` faces, so a second person in the frame is counted, not missed.
Of the faces found, the one that continues the track (largest overlap with the
previous frame's tracked box) is kept.

Only ``mediapipe.python.solutions.face_mesh`` is imported, inside
:class:`FaceTracker`: the top-level ``mediapipe`` package can pull
``sounddevice``, which needs PortAudio.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

N_LANDMARKS = 468


@dataclass(frozen=True)
class TrackerConfig:
    """Face mesh settings."""

    max_faces: int = 2  # counting a second face is what rejects two-person frames
    duplicate_iou: float = 0.5  # the mesh sometimes reports one face twice; merge above this overlap
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5


@dataclass(frozen=True)
class FaceObservation:
    """The tracked face of one frame."""

    n_faces: int  # faces the mesh found in the frame
    landmarks: np.ndarray | None  # (468, 3) pixel x, y and z (x scale), None without a face
    bbox: tuple[float, float, float, float] | None  # x0, y0, x1, y1 of the landmarks, pixels

    @property
    def face_found(self) -> bool:
        return self.landmarks is not None


def _bbox(points: np.ndarray) -> tuple[float, float, float, float]:
    x0, y0 = points[:, :2].min(axis=0)
    x1, y1 = points[:, :2].max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two x0, y0, x1, y1 boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _distinct(
    faces: list[np.ndarray], max_iou: float
) -> tuple[list[np.ndarray], list[tuple[float, float, float, float]]]:
    """Faces with their boxes, dropping any that overlaps an earlier one by more than ``max_iou``."""
    kept: list[np.ndarray] = []
    boxes: list[tuple[float, float, float, float]] = []
    for points in faces:
        box = _bbox(points)
        if all(iou(box, other) <= max_iou for other in boxes):
            kept.append(points)
            boxes.append(box)
    return kept, boxes


class FaceTracker:
    """Face mesh over the frames of one clip, in order; use as a context manager."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        from mediapipe.python.solutions import face_mesh

        self.config = config
        self._mesh = face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=config.max_faces,
            refine_landmarks=False,
            min_detection_confidence=config.min_detection_confidence,
            min_tracking_confidence=config.min_tracking_confidence,
        )
        self._last: tuple[float, float, float, float] | None = None

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._mesh.close()

    def observe(self, rgb: np.ndarray) -> FaceObservation:
        """Landmarks of the tracked face in one (H, W, 3) uint8 RGB frame."""
        height, width = rgb.shape[:2]
        result = self._mesh.process(rgb)
        faces = result.multi_face_landmarks or []
        if not faces:
            self._last = None
            return FaceObservation(n_faces=0, landmarks=None, bbox=None)
        scale = np.array([width, height, width], np.float32)
        candidates = [
            np.array([(p.x, p.y, p.z) for p in face.landmark], np.float32) * scale for face in faces
        ]
        candidates, boxes = _distinct(candidates, self.config.duplicate_iou)
        if self._last is None:
            # A new track starts on the largest face.
            best = max(range(len(boxes)), key=lambda j: (boxes[j][2] - boxes[j][0]) * (boxes[j][3] - boxes[j][1]))
        else:
            best = max(range(len(boxes)), key=lambda j: iou(boxes[j], self._last))
        self._last = boxes[best]
        return FaceObservation(n_faces=len(boxes), landmarks=candidates[best], bbox=boxes[best])
