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

Small faces (``TrackerConfig.small_faces``): the mesh's detector sees the
whole frame at 128x128 and misses a face under about 15 % of the frame's
height (a wide shot, a podium, a 4K frame). Only on a frame where the
whole-frame mesh found nothing, the full-range detector (BlazeFace full
range, faces down to about 5 % of the height) finds the face, and a second
face mesh tracks it in a square region around it, kept fixed (so that mesh's
video-mode tracking stays in one coordinate frame) until the face moves or
changes size enough to cut a new one. Its landmarks are mapped back to the
whole frame. While a face is tracked this way, other faces are counted by
the full-range detector too, since the short-range one would miss another
face of the same size. A frame where the whole-frame mesh finds a face takes
exactly the path it takes without the switch.

Only ``mediapipe.python.solutions`` is imported, inside the functions that build its parts:
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
    small_faces: bool = True  # look for a face the whole-frame mesh misses with the full-range detector (docstring)

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


Box = tuple[float, float, float, float]  # x0, y0, x1, y1, pixels
Region = tuple[int, int, int]  # x0, y0 and side of a square part of a frame, pixels

_REGION_SCALE = 3.0  # a small face's region: this many times its box's longer side (the mesh's detector needs margin)
_RECUT_SHIFT = 1 / 6  # a new region is cut when the face's would move by more than this share of the side
_RECUT_SCALE = 1.5  # or change its side by more than this factor


def _bbox(points: np.ndarray) -> Box:
    x0, y0 = points[:, :2].min(axis=0)
    x1, y1 = points[:, :2].max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def _centre_inside(box: Box, outer: Box) -> bool:
    return outer[0] <= (box[0] + box[2]) / 2 <= outer[2] and outer[1] <= (box[1] + box[3]) / 2 <= outer[3]


def _mesh_points(mesh, rgb: np.ndarray) -> np.ndarray | None:
    """(468, 3) pixel landmarks of the face a ``FaceMesh`` finds in ``rgb``, or None."""
    faces = mesh.process(rgb).multi_face_landmarks
    if not faces:
        return None
    height, width = rgb.shape[:2]
    return landmark_array(faces[0]) * np.array([width, height, width], np.float32)


def _detections(detector, rgb: np.ndarray) -> list[tuple[float, Box]]:
    """Score and pixel box of each face a ``FaceDetection`` finds in ``rgb``."""
    height, width = rgb.shape[:2]
    found = detector.process(rgb).detections or []
    return [
        (d.score[0], (b.xmin * width, b.ymin * height, (b.xmin + b.width) * width, (b.ymin + b.height) * height))
        for d, b in ((d, d.location_data.relative_bounding_box) for d in found)
    ]


def _square_around(box: Box, width: int, height: int) -> Region:
    """The region of ``_REGION_SCALE`` times the box's longer side centred on it, moved and cut to fit the frame."""
    side = max(1, int(min(_REGION_SCALE * max(box[2] - box[0], box[3] - box[1]), width, height)))
    x0 = int(np.clip((box[0] + box[2] - side) / 2, 0, width - side))
    y0 = int(np.clip((box[1] + box[3] - side) / 2, 0, height - side))
    return x0, y0, side


def _near(region: Region, wanted: Region) -> bool:
    """Whether tracking can stay in ``region`` although the face now wants ``wanted``."""
    shift = _RECUT_SHIFT * region[2]
    return (
        abs(region[0] - wanted[0]) <= shift
        and abs(region[1] - wanted[1]) <= shift
        and 1 / _RECUT_SCALE <= wanted[2] / region[2] <= _RECUT_SCALE
    )


def _face_mesh(config: TrackerConfig):
    """A video-mode face mesh tracking one face."""
    from mediapipe.python.solutions import face_mesh

    return face_mesh.FaceMesh(
        static_image_mode=False,
        max_num_faces=1,
        refine_landmarks=False,
        min_detection_confidence=config.min_detection_confidence,
        min_tracking_confidence=config.min_tracking_confidence,
    )


def _face_detector(model: int, config: TrackerConfig):
    """BlazeFace short range (``model`` 0, the mesh's own) or full range (1)."""
    from mediapipe.python.solutions import face_detection

    return face_detection.FaceDetection(model_selection=model, min_detection_confidence=config.min_detection_confidence)


class FaceTracker:
    """Face mesh over the frames of one clip, in order; use as a context manager."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config
        self._mesh = _face_mesh(config)
        self._detector = _face_detector(0, config) if config.max_faces > 1 else None
        # The small-face search's graphs, made when the whole-frame mesh first misses a face: most clips never
        # need them, and each graph costs a clip about 0.02 core-seconds to make.
        self._region_mesh = None
        self._far_detector = None
        self._region: Region | None = None  # where the region mesh tracks a small face; None: search the frame
        self._last: Box | None = None
        self._others = 0  # other faces at the last count
        self._since_count = 0  # frames since the last count
        self._search_in = 0  # frames until the full-range detector searches again, after it found nothing

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for part in (self._mesh, self._region_mesh, self._detector, self._far_detector):
            if part is not None:
                part.close()

    def observe(self, rgb: np.ndarray, step: int = 1) -> FaceObservation:
        """Landmarks of the tracked face in one (H, W, 3) uint8 RGB frame, and the faces counted in it.

        ``step``: frames since the last frame observed (more than 1 where only
        keyframes are observed, :mod:`pipeline.measure`), so that other faces
        are still counted every ``recount_every`` frames of video.
        """
        points, counter = _mesh_points(self._mesh, rgb), self._detector
        if points is not None:
            self._region, self._search_in = None, 0
        elif self.config.small_faces:
            points = self._small_face(rgb, step)
            # A second face as small as this one would escape the short-range detector.
            counter = self._far_detector if self._detector is not None else None
        if points is None:
            self._last = None
            return FaceObservation(n_faces=0, landmarks=None, bbox=None)
        box = _bbox(points)
        new_track, self._last = self._last is None, box
        self._since_count += step
        if counter is not None and (new_track or self._others or self._since_count >= self.config.recount_every):
            self._others, self._since_count = self._count_others(counter, rgb, box), 0
        return FaceObservation(n_faces=min(1 + self._others, self.config.max_faces), landmarks=points, bbox=box)

    def _small_face(self, rgb: np.ndarray, step: int) -> np.ndarray | None:
        """Landmarks of a face the whole-frame mesh missed: tracked in its region, else searched for anew.

        Where a search found nothing, the next is ``recount_every`` frames later:
        a stretch without a face (a cutaway, a turned head) then costs the
        full-range detector (several times the mesh) on a fraction of its frames,
        and a small face coming into view is found up to ``recount_every - 1``
        frames late. A face big enough for the whole-frame mesh is never late.
        """
        if self._region_mesh is None:
            self._region_mesh, self._far_detector = _face_mesh(self.config), _face_detector(1, self.config)
        height, width = rgb.shape[:2]
        points = self._track_region(rgb) if self._region is not None else None
        if points is None and self._region is None:
            self._search_in -= step
            if self._search_in > 0:
                return None
        if points is None:
            found = _detections(self._far_detector, rgb)
            self._search_in = 0 if found else self.config.recount_every
            self._move_region(_square_around(max(found)[1], width, height) if found else None)
            points = self._track_region(rgb) if self._region is not None else None
        if points is not None:
            wanted = _square_around(_bbox(points), width, height)
            if not _near(self._region, wanted):
                self._move_region(wanted)
        return points

    def _move_region(self, region: Region | None) -> None:
        """Track in ``region`` from now on, the region mesh starting afresh (its tracking is in region pixels)."""
        self._region = region
        if region is not None:
            self._region_mesh.reset()

    def _track_region(self, rgb: np.ndarray) -> np.ndarray | None:
        """The region mesh's landmarks in the current region, in whole-frame pixels."""
        x0, y0, side = self._region
        points = _mesh_points(self._region_mesh, np.ascontiguousarray(rgb[y0 : y0 + side, x0 : x0 + side]))
        return None if points is None else points + np.array([x0, y0, 0], np.float32)

    @staticmethod
    def _count_others(detector, rgb: np.ndarray, tracked: Box) -> int:
        """Faces ``detector`` finds whose box centre lies outside the tracked face's landmark box."""
        return sum(not _centre_inside(box, tracked) for _, box in _detections(detector, rgb))
