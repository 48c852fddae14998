"""Face and head pose per frame: the face mesh on every frame, or on keyframes with the frames between interpolated.

The face mesh is the costliest part of preparing a clip (about 0.06 core-s per
second of video on every frame, ``docs/faces.md``), and a talking head holds
still most of the time. With ``KeyframeConfig.every = k`` the mesh runs on
every k-th frame and the last. Where two neighbouring keyframes agree (a face
in both, the same count of faces, each angle within ``max_turn_deg`` and each
box edge within ``max_shift`` of the box's size), the frames between take the
linear interpolation of their landmarks, boxes and angles; where they do not (a
turn, a face lost or found, another face counted), the frame halfway between is
measured and each half judged the same way, down to neighbouring frames. What
this can miss: a movement that leaves and comes back to the same pose within k
frames, and a second face shown only between two keyframes. ``every = 1`` (the
default) measures every frame.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from pipeline.faces import FaceObservation, FaceTracker, TrackerConfig
from pipeline.pose import head_pose

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyframeConfig:
    """Which frames the face mesh runs on, and when the frames between two of them are interpolated."""

    every: int = 1  # the mesh runs on every k-th frame (and the last); 1 = every frame
    max_turn_deg: float = 3.0  # keyframes further apart than this in yaw, pitch or roll are not interpolated
    max_shift: float = 0.05  # nor those whose box edges moved further than this share of the box's size

    def __post_init__(self) -> None:
        if self.every < 1 or self.max_turn_deg < 0 or self.max_shift < 0:
            raise ValueError(f"KeyframeConfig: every must be >= 1 and the limits >= 0, got {self}")


@dataclass(frozen=True)
class FrameMeasure:
    """Tracker output and head pose of one frame."""

    observation: FaceObservation
    yaw: float = math.nan
    pitch: float = math.nan
    roll: float = math.nan
    interpolated: bool = False  # between two keyframes, not measured


def agree(a: FrameMeasure, b: FrameMeasure, config: KeyframeConfig) -> bool:
    """Whether the frames between keyframes ``a`` and ``b`` may be interpolated."""
    oa, ob = a.observation, b.observation
    if oa.landmarks is None or ob.landmarks is None or oa.n_faces != ob.n_faces:
        return False
    turns = (abs(a.yaw - b.yaw), abs(a.pitch - b.pitch), abs(a.roll - b.roll))
    if not all(t <= config.max_turn_deg for t in turns):  # NaN (no pose) never agrees
        return False
    box_a, box_b = np.array(oa.bbox), np.array(ob.bbox)
    size = max(box_a[2] - box_a[0], box_a[3] - box_a[1])
    return bool(np.abs(box_b - box_a).max() <= config.max_shift * size)


def interpolate(a: FrameMeasure, b: FrameMeasure, n: int) -> list[FrameMeasure]:
    """The ``n`` frames strictly between keyframes ``a`` and ``b``, linearly interpolated (both must hold a face)."""
    oa, ob = a.observation, b.observation
    out = []
    for j in range(1, n + 1):
        w = j / (n + 1)
        landmarks = ((1 - w) * oa.landmarks + w * ob.landmarks).astype(np.float32)
        bbox = tuple(float((1 - w) * p + w * q) for p, q in zip(oa.bbox, ob.bbox, strict=True))
        observation = replace(oa, landmarks=landmarks, bbox=bbox)
        out.append(FrameMeasure(observation, (1 - w) * a.yaw + w * b.yaw, (1 - w) * a.pitch + w * b.pitch,
                                (1 - w) * a.roll + w * b.roll, interpolated=True))
    return out


def posed(observation: FaceObservation, width: int, height: int) -> FrameMeasure:
    """A frame's measure: its tracker output and, where a face was found and it has a solution, its head pose.

    A face without a pose (no solution for its landmarks) keeps NaN angles:
    the frame is invalid (an extreme pose) rather than the clip failing.
    """
    if observation.landmarks is None:
        return FrameMeasure(observation)
    try:
        pose = head_pose(observation.landmarks, width, height)
    except ValueError as exc:
        log.warning("frame without a head pose: %s", exc)
        return FrameMeasure(observation)
    return FrameMeasure(observation, pose.yaw, pose.pitch, pose.roll)


def measure_frames(frames: Iterable[tuple[int, np.ndarray]], width: int, height: int, config: TrackerConfig,
                   keyframes: KeyframeConfig = KeyframeConfig()) -> list[FrameMeasure]:
    """Track the face through ``(k, rgb)`` frames and measure the head pose of each (see the module docstring)."""
    return [m for _, m in measured_frames(frames, width, height, config, keyframes)]


def measured_frames(frames: Iterable[tuple[int, np.ndarray]], width: int, height: int, config: TrackerConfig,
                    keyframes: KeyframeConfig = KeyframeConfig()) -> Iterator[tuple[np.ndarray, FrameMeasure]]:
    """Each frame with its measure, in order, as :func:`measure_frames` measures them.

    A frame comes out once its measure is known: at once on every frame, up to
    ``keyframes.every`` frames late with keyframes. So a caller can cut what it
    needs from the frames in the same decoding pass, holding only those few.
    """
    last_seen = 0  # the frame the tracker saw last

    def measure(k: int, rgb: np.ndarray, recount: bool = False) -> FrameMeasure:
        nonlocal last_seen
        # Bisection measures frames before the keyframe just seen, whose count of other faces the tracker
        # holds: where the count changes between the two frames bracketing k, k is counted again.
        step = k - last_seen if k > last_seen else (tracker.config.recount_every if recount else last_seen - k)
        last_seen = k
        return posed(tracker.observe(rgb, max(1, step)), width, height)

    last: FrameMeasure | None = None  # the last keyframe's measure
    first = 0  # its frame number
    pending: list[np.ndarray] = []  # frames after it
    with FaceTracker(config) as tracker:
        for _, rgb in frames:
            if last is None:
                last = measure(0, rgb)
                yield rgb, last
            else:
                pending.append(rgb)
            if len(pending) == keyframes.every:
                found = _up_to_keyframe(last, first, pending, measure, keyframes)
                yield from zip(pending, found, strict=True)
                last, first, pending = found[-1], first + len(pending), []
        if pending:
            yield from zip(pending, _up_to_keyframe(last, first, pending, measure, keyframes), strict=True)


def _up_to_keyframe(last: FrameMeasure, first: int, pending: list[np.ndarray],
                    measure: Callable[[int, np.ndarray, bool], FrameMeasure],
                    config: KeyframeConfig) -> list[FrameMeasure]:
    """The frames after the last keyframe (``last``, frame ``first``) up to the next (the last of ``pending``).

    The next keyframe is measured; where the two disagree, the frame halfway
    between is measured and each half is judged the same way, down to
    neighbouring frames, so a movement costs the mesh only where it happens.
    """
    known = {0: last}  # by offset from the last keyframe

    def look(j: int, recount: bool = False) -> None:
        known[j] = measure(first + j, pending[j - 1], recount)

    def fill(lo: int, hi: int) -> None:
        if hi - lo < 2:
            return
        if agree(known[lo], known[hi], config):
            known.update(zip(range(lo + 1, hi), interpolate(known[lo], known[hi], hi - lo - 1)))
            return
        mid = (lo + hi) // 2
        look(mid, recount=known[lo].observation.n_faces != known[hi].observation.n_faces)
        fill(lo, mid)
        fill(mid, hi)

    look(len(pending))
    fill(0, len(pending))
    return [known[j] for j in range(1, len(pending) + 1)]
