"""Face landmarks per frame with mediapipe's face mesh, tracked within a clip, and a count of other faces.

The face mesh runs in video mode for one face: it tracks the landmarks from
frame to frame and only runs its face detector when it has lost the face.
Other faces (a second person makes a frame unusable) are counted by that
same detector (BlazeFace short range, the same confidence threshold), run on
the frame beside the mesh: on the first frame of a track, on every frame
while another face was seen at the last count, and otherwise every
``recount_every`` frames. Letting the mesh itself look for a second face
(``max_num_faces=2``) runs its detector on every frame of a one-face clip,
about 40 % of the tracking cost (``docs/faces.md``); the count here costs
1/``recount_every`` of that, and can see a second face arrive up to
``recount_every - 1`` frames late or miss one shown for fewer frames.

Only ``mediapipe.python.solutions`` is imported, inside :class:`FaceTracker`:
the top-level ``mediapipe`` package can pull ``sounddevice``, which needs
PortAudio.
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

    max_faces: int = 2  # faces counted at most; a second is what rejects two-person frames; 1 = never look
    recount_every: int = 5  # frames between counts of other faces while the tracked face is alone; 1 = every frame
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5

    def __post_init__(self) -> None:
        if self.max_faces < 1 or self.recount_every < 1:
            raise ValueError(f"TrackerConfig: max_faces and recount_every must be >= 1, got {self}")


@dataclass(frozen=True)
class FaceObservation:
    """The tracked face of one frame."""

    n_faces: int  # the tracked face and the others counted (see the module docstring), at most max_faces
    landmarks: np.ndarray | None  # (468, 3) pixel x, y and z (x scale), None without a face
    bbox: tuple[float, float, float, float] | None  # x0, y0, x1, y1 of the landmarks, pixels

    @property
    def face_found(self) -> bool:
        return self.landmarks is not None


_PACKED = np.dtype([("head", "u1", 3), ("x", "<f4"), ("t_y", "u1"), ("y", "<f4"), ("t_z", "u1"), ("z", "<f4")])
"""A ``NormalizedLandmark`` with x, y, z set, as a ``NormalizedLandmarkList`` serialises it (17 bytes)."""

_PACKED_TAGS = ((0x0A, 0x0F, 0x0D), 0x15, 0x1D)
"""Field 1 (landmark, 15 bytes long), then the keys of the float fields x (1), y (2) and z (3)."""


def landmark_array(landmarks) -> np.ndarray:
    """(N, 3) float32 normalised x, y, z of a mediapipe ``NormalizedLandmarkList``.

    Reads the serialised message with numpy when every landmark carries just
    x, y and z (the face mesh's output), ten times faster than reading the
    468 landmark objects one by one (0.02 against 0.25 ms a frame); any other
    layout is read point by point.
    """
    data = landmarks.SerializeToString()
    if len(data) == _PACKED.itemsize * len(landmarks.landmark):
        packed = np.frombuffer(data, _PACKED)
        head, t_y, t_z = _PACKED_TAGS
        if (packed["head"] == head).all() and (packed["t_y"] == t_y).all() and (packed["t_z"] == t_z).all():
            return np.stack([packed["x"], packed["y"], packed["z"]], axis=1)
    return np.array([(p.x, p.y, p.z) for p in landmarks.landmark], np.float32).reshape(-1, 3)


def _bbox(points: np.ndarray) -> tuple[float, float, float, float]:
    x0, y0 = points[:, :2].min(axis=0)
    x1, y1 = points[:, :2].max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def _centre_inside(box: tuple[float, float, float, float], outer: tuple[float, float, float, float]) -> bool:
    return outer[0] <= (box[0] + box[2]) / 2 <= outer[2] and outer[1] <= (box[1] + box[3]) / 2 <= outer[3]


class FaceTracker:
    """Face mesh over the frames of one clip, in order; use as a context manager."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        from mediapipe.python.solutions import face_detection, face_mesh

        self.config = config
        self._mesh = face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=1,
            refine_landmarks=False,
            min_detection_confidence=config.min_detection_confidence,
            min_tracking_confidence=config.min_tracking_confidence,
        )
        self._detector = (face_detection.FaceDetection(model_selection=0,
                                                       min_detection_confidence=config.min_detection_confidence)
                          if config.max_faces > 1 else None)
        self._last: tuple[float, float, float, float] | None = None
        self._others = 0  # other faces at the last count
        self._since_count = 0  # frames since the last count

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._mesh.close()
        if self._detector is not None:
            self._detector.close()

    def observe(self, rgb: np.ndarray, step: int = 1) -> FaceObservation:
        """Landmarks of the tracked face in one (H, W, 3) uint8 RGB frame, and the faces counted in it.

        ``step``: frames since the last frame observed (more than 1 where only
        keyframes are observed, :mod:`pipeline.measure`), so that other faces
        are still counted every ``recount_every`` frames of video.
        """
        height, width = rgb.shape[:2]
        faces = self._mesh.process(rgb).multi_face_landmarks
        if not faces:
            self._last = None
            return FaceObservation(n_faces=0, landmarks=None, bbox=None)
        points = landmark_array(faces[0]) * np.array([width, height, width], np.float32)
        box = _bbox(points)
        new_track, self._last = self._last is None, box
        self._since_count += step
        if self._detector is not None and (new_track or self._others or self._since_count >= self.config.recount_every):
            self._others, self._since_count = self._count_others(rgb, box), 0
        return FaceObservation(n_faces=min(1 + self._others, self.config.max_faces), landmarks=points, bbox=box)

    def _count_others(self, rgb: np.ndarray, tracked: tuple[float, float, float, float]) -> int:
        """Detected faces whose box centre lies outside the tracked face's landmark box."""
        height, width = rgb.shape[:2]
        found = self._detector.process(rgb).detections or []
        boxes = [(b.xmin * width, b.ymin * height, (b.xmin + b.width) * width, (b.ymin + b.height) * height)
                 for b in (d.location_data.relative_bounding_box for d in found)]
        return sum(not _centre_inside(b, tracked) for b in boxes)
