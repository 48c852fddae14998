"""The faces stage for one clip: poses, kept span, training shard, or a reject.

One pass over the video: it tracks the face and measures the pose of every
frame, or of keyframes with the frames between interpolated
(:mod:`pipeline.measure`), and cuts the smoothed crops of each run of valid
frames as it goes, keeping those of the longest (:class:`pipeline.crops.RunCrops`).
Decoding is the costliest part of an HD clip (about 8 ms of CPU a 1080p H.264
frame, more than the face mesh), so the video is decoded once. Memory holds a
few decoded frames and a pose row per frame; the crops wait on disk. Any bad
input becomes a reject naming the clip and the reason; the stage runner
(:mod:`pipeline.stage`) writes it and carries on. The shard goes straight to the
warehouse (a folder or object storage), so a worker on another machine needs
nothing but the warehouse URI.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field

from pipeline.cores import one_core
from pipeline.crops import CropConfig, RunCrops
from pipeline.faces import TrackerConfig
from pipeline.measure import FrameMeasure, KeyframeConfig, measured_frames
from pipeline.spans import OK, FrameFacts, SpanConfig, SpanDecision, choose_span, frame_status
from pipeline.stage import ClipResult, Reject
from warehouse.features import ShardRecord, write_shard
from warehouse.location import DEFAULT_CACHE_DIR, Location

log = logging.getLogger(__name__)

STAGE = "faces"


@dataclass(frozen=True)
class FacesConfig:
    """Everything the faces stage can be told."""

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)  # the mesh on every frame, or keyframes
    span: SpanConfig = field(default_factory=SpanConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    fps: float = 25.0  # every clip is resampled to this rate
    allow_variable_frame_rate: bool = True  # False: reject VFR sources instead of resampling them
    # track each clip's face on one free CPU core (pipeline/cores.py); False: mediapipe's threads float
    pin_core: bool = True


@dataclass(frozen=True)
class ClipInput:
    """The part of a ``clips`` row the stage needs."""

    clip_id: str
    video: str | os.PathLike[str]  # local path or object-store URI
    speaker_id: str | None = None
    start_s: float | None = None  # segment inside the video; None = from the start
    end_s: float | None = None  # None = to the end

    @classmethod
    def from_row(cls, row: dict[str, object]) -> ClipInput:
        """The input of a ``clips`` row."""
        return cls(str(row["clip_id"]), str(row["video_uri"]), row["speaker_id"], row["start_s"], row["end_s"])


def frame_fact(m: FrameMeasure, width: int, height: int) -> FrameFacts:
    """The facts of one frame the valid-frame rule reads."""
    return FrameFacts(m.observation.n_faces, m.yaw, m.pitch, m.roll, m.observation.bbox, width, height)


def frame_facts(measures: list[FrameMeasure], width: int, height: int) -> list[FrameFacts]:
    """The per-frame facts the valid-frame rule reads."""
    return [frame_fact(m, width, height) for m in measures]


def pose_row(clip_id: str, frame: int, m: FrameMeasure) -> dict[str, object]:
    """The ``poses`` row of one frame, numbered from 0 at the clip start."""
    return {"clip_id": clip_id, "frame": frame, "face_found": m.observation.face_found,
            "n_faces": m.observation.n_faces,
            "yaw": None if math.isnan(m.yaw) else m.yaw,
            "pitch": None if math.isnan(m.pitch) else m.pitch,
            "roll": None if math.isnan(m.roll) else m.roll,
            "bbox": list(m.observation.bbox) if m.observation.bbox is not None else None,
            "interpolated": m.interpolated}


def _rejected(clip_id: str, reason: str, detail: str, poses: list[dict[str, object]] | None = None) -> ClipResult:
    """A reject, with the poses measured before it when there are any."""
    return ClipResult(clip_id, {"poses": poses or []}, Reject(clip_id, STAGE, reason, detail))


def _frame_range(clip: ClipInput, fps: float, total: int) -> tuple[int, int]:
    first = 0 if clip.start_s is None else round(clip.start_s * fps)
    last = total if clip.end_s is None else min(total, round(clip.end_s * fps))
    return first, last


def process_clip(clip: ClipInput, warehouse: str | os.PathLike[str] | Location,
                 config: FacesConfig = FacesConfig(), cache_dir: str | os.PathLike[str] = DEFAULT_CACHE_DIR,
                 ) -> ClipResult:
    """Run the faces stage on one clip.

    Args:
        clip: the clip's video and segment.
        warehouse: the warehouse root; the shard goes to ``<warehouse>/shards/<clip_id>.npz``.
        config: tracker, span, crop and frame-rate settings.
        cache_dir: where a video on object storage is copied to be decoded.

    Returns:
        Rows of ``poses`` (every frame measured) and, for a kept clip,
        ``feature_shards`` and ``clip_spans``; or a reject. Never raises for
        bad media; raises only for programming errors and storage failures.
    """
    from pipeline.audio import MediaError, decode_audio
    from pipeline.mfcc import mfcc_per_frame
    from pipeline.video import VideoError, probe_video, read_frames

    cid = clip.clip_id
    try:
        video = Location.of(clip.video).local_copy(cache_dir)
        info = probe_video(video)
        if info.variable_frame_rate and not config.allow_variable_frame_rate:
            raise VideoError(f"{clip.video}: variable frame rate", "variable_frame_rate")
        first, last = _frame_range(clip, config.fps, info.n_frames(config.fps))
        if last - first < config.span.min_frames:
            raise VideoError(f"{clip.video}: {last - first} frames at {config.fps} fps, "
                             f"fewer than {config.span.min_frames}", "too_short")
        samples = decode_audio(video, start_s=first / config.fps, end_s=last / config.fps)
    except VideoError as exc:
        return _rejected(cid, exc.reason, str(exc))
    except MediaError as exc:
        return _rejected(cid, "no_audio" if "no audio" in str(exc) else "decode_error", str(exc))
    except FileNotFoundError as exc:  # a video on object storage that is gone (a local one: VideoError above)
        return _rejected(cid, "decode_error", str(exc))

    poses: list[dict[str, object]] = []
    statuses: list[str] = []
    runs = RunCrops(config.crop)
    frames = read_frames(info, config.fps, first, last)
    try:
        with one_core(config.pin_core):
            for k, (rgb, m) in enumerate(measured_frames(frames, info.width, info.height, config.tracker,
                                                         config.keyframes)):
                poses.append(pose_row(cid, k, m))
                statuses.append(frame_status(frame_fact(m, info.width, info.height), config.span))
                runs.add(rgb, m.observation.bbox if statuses[-1] == OK else None)
    except VideoError as exc:
        return _rejected(cid, exc.reason, str(exc))
    if config.keyframes.every > 1:
        log.info("%s: face mesh on %d of %d frames", cid, sum(not p["interpolated"] for p in poses), len(poses))
    decision: SpanDecision = choose_span(statuses, config.span)
    if info.variable_frame_rate:
        log.info("%s: variable frame rate source resampled to %s fps", cid, config.fps)
    if decision.reason is not None:
        return _rejected(cid, decision.reason, f"{clip.video}: {decision.detail}", poses)
    start, end, crops = runs.finish()
    if (start, end) != (decision.start, decision.end):  # both take the earliest longest run of valid frames
        raise AssertionError(f"{cid}: crops cut for frames {start}-{end}, span is {decision.start}-{decision.end}")
    mfcc = mfcc_per_frame(samples, decision.end, fps=config.fps)[decision.start:]
    name = write_shard(Location.of(warehouse), cid, crops, mfcc)
    record = ShardRecord(cid, clip.speaker_id, decision.start, decision.end, config.fps, name)
    span = {"clip_id": cid, "start_frame": decision.start, "end_frame": decision.end,
            "n_frames": decision.n_frames}
    log.info("%s: kept frames %d-%d (%s)", cid, decision.start, decision.end, decision.detail)
    return ClipResult(cid, {"poses": poses, "feature_shards": [record.to_row()], "clip_spans": [span]})
