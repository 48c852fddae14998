"""Which frames are usable, and the longest consecutive run of them (the paper's rule).

A frame is valid when exactly one face is tracked, its landmarks lie inside
the image, and its head pose is within the limits. Each invalid frame gets one
status so that a rejected clip can say why it was dropped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

OK = "ok"
NO_FACE = "no_face"
MULTIPLE_FACES = "multiple_faces"
OUT_OF_FRAME = "face_out_of_frame"
EXTREME_POSE = "extreme_pose"


@dataclass(frozen=True)
class SpanConfig:
    """The valid-frame rule and the minimum run length."""

    max_yaw: float = 25.0  # degrees either way; turned further, a face shows one cheek
    max_pitch: float = 20.0
    max_roll: float = 25.0  # in-plane tilt; the crop does not rotate faces upright
    min_frames: int = 70  # the paper's training sequence length (2.8 s at 25 fps)
    edge_margin: float = 0.0  # landmarks this many pixels from the border count as out of frame

    def __post_init__(self) -> None:
        for name in ("max_yaw", "max_pitch", "max_roll", "edge_margin"):
            if getattr(self, name) < 0:
                raise ValueError(f"SpanConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.min_frames < 1:
            raise ValueError(f"SpanConfig.min_frames must be >= 1, got {self.min_frames}")


@dataclass(frozen=True)
class FrameFacts:
    """What the face stage measured on one frame (pose angles NaN without a face)."""

    n_faces: int
    yaw: float
    pitch: float
    roll: float
    bbox: tuple[float, float, float, float] | None
    width: int
    height: int


def frame_status(facts: FrameFacts, config: SpanConfig) -> str:
    """``"ok"`` for a valid frame, else the first rule it breaks."""
    if facts.n_faces == 0 or facts.bbox is None:
        return NO_FACE
    if facts.n_faces > 1:
        return MULTIPLE_FACES
    x0, y0, x1, y1 = facts.bbox
    m = config.edge_margin
    if x0 < m or y0 < m or x1 > facts.width - m or y1 > facts.height - m:
        return OUT_OF_FRAME
    if not (abs(facts.yaw) <= config.max_yaw and abs(facts.pitch) <= config.max_pitch
            and abs(facts.roll) <= config.max_roll):
        return EXTREME_POSE  # NaN angles fail these comparisons too
    return OK


def longest_run(valid: np.ndarray) -> tuple[int, int]:
    """``(start, end)`` of the longest run of True (end exclusive; the earliest on ties), ``(0, 0)`` if none."""
    flags = np.asarray(valid, dtype=bool)
    if not flags.any():
        return 0, 0
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    best = int(np.argmax(ends - starts))
    return int(starts[best]), int(ends[best])


@dataclass(frozen=True)
class SpanDecision:
    """The kept span of a clip, or why there is none."""

    start: int
    end: int  # exclusive
    reason: str | None  # None when the span is long enough
    detail: str

    @property
    def n_frames(self) -> int:
        return self.end - self.start


def choose_span(statuses: list[str], config: SpanConfig) -> SpanDecision:
    """Apply the paper's rule: the longest valid run, if it reaches ``config.min_frames``.

    A clip without a long enough run is named by the dominant failure when
    more than half its frames fail for one reason, else ``span_too_short``.
    """
    start, end = longest_run(np.array([s == OK for s in statuses], dtype=bool))
    counts = Counter(statuses)
    detail = (
        f"longest valid run {end - start} of {len(statuses)} frames (need {config.min_frames}); "
        + ", ".join(f"{name}={counts[name]}" for name in sorted(counts))
    )
    if end - start >= config.min_frames:
        return SpanDecision(start, end, None, detail)
    failures = Counter({k: v for k, v in counts.items() if k != OK})
    reason = "span_too_short"
    if failures:
        name, count = failures.most_common(1)[0]
        if count * 2 > len(statuses):
            reason = name
    return SpanDecision(start, end, reason, detail)
