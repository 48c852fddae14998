"""The faces stage for one clip: poses, kept span, training shard, or a reject.

Two passes over the video: the first tracks the face and measures the pose of
every frame (cheap to keep: landmarks boxes and three angles per frame), the
second decodes only the kept span again and cuts the smoothed crops, so memory
does not grow with clip length. Any bad input becomes a reject row naming the
clip and the reason; the caller writes it and carries on.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.crops import CropConfig, crop, smooth_boxes
from pipeline.faces import FaceObservation, TrackerConfig
from pipeline.shards import ShardRecord, records_to_table, write_shard
from pipeline.spans import FrameFacts, SpanConfig, SpanDecision, choose_span, frame_status
from warehouse.tables import CLIP_SPANS, FEATURE_SHARDS, POSES, REJECTS

log = logging.getLogger(__name__)

STAGE = "faces"


@dataclass(frozen=True)
class FacesConfig:
    """Everything the faces stage can be told."""

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    span: SpanConfig = field(default_factory=SpanConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    fps: float = 25.0  # every clip is resampled to this rate
    allow_variable_frame_rate: bool = True  # False: reject VFR sources instead of resampling them


@dataclass(frozen=True)
class ClipInput:
    """The part of a ``clips`` row the stage needs."""

    clip_id: str
    video_path: Path
    speaker_id: str | None = None
    start_s: float | None = None  # segment inside the video; None = from the start
    end_s: float | None = None  # None = to the end


@dataclass(frozen=True)
class FacesResult:
    """What the stage produced for one clip; ``reject`` is set when the clip was dropped."""

    clip_id: str
    poses: pa.Table  # POSES rows, possibly empty
    span: pa.Table  # CLIP_SPANS row, empty when rejected
    shard: pa.Table  # FEATURE_SHARDS row, empty when rejected
    reject: pa.Table  # REJECTS row, empty when kept

    @property
    def kept(self) -> bool:
        return self.reject.num_rows == 0


@dataclass(frozen=True)
class FrameMeasure:
    """Tracker output and head pose of one frame."""

    observation: FaceObservation
    yaw: float = math.nan
    pitch: float = math.nan
    roll: float = math.nan


def measure_frames(frames, width: int, height: int, config: TrackerConfig) -> list[FrameMeasure]:
    """Track the face through ``(k, rgb)`` frames and measure the head pose of each."""
    from pipeline.faces import FaceTracker
    from pipeline.pose import head_pose

    measures: list[FrameMeasure] = []
    with FaceTracker(config) as tracker:
        for _, rgb in frames:
            obs = tracker.observe(rgb)
            if obs.landmarks is None:
                measures.append(FrameMeasure(obs))
                continue
            pose = head_pose(obs.landmarks, width, height)
            measures.append(FrameMeasure(obs, pose.yaw, pose.pitch, pose.roll))
    return measures


def frame_facts(measures: list[FrameMeasure], width: int, height: int) -> list[FrameFacts]:
    """The per-frame facts the valid-frame rule reads."""
    return [FrameFacts(m.observation.n_faces, m.yaw, m.pitch, m.roll, m.observation.bbox, width, height)
            for m in measures]


def poses_table(clip_id: str, measures: list[FrameMeasure]) -> pa.Table:
    """``poses`` rows of one clip, frame numbers from 0 at the clip start."""
    rows = [
        {"clip_id": clip_id, "frame": k, "face_found": m.observation.face_found,
         "n_faces": m.observation.n_faces,
         "yaw": None if math.isnan(m.yaw) else m.yaw,
         "pitch": None if math.isnan(m.pitch) else m.pitch,
         "roll": None if math.isnan(m.roll) else m.roll,
         "bbox": list(m.observation.bbox) if m.observation.bbox is not None else None}
        for k, m in enumerate(measures)
    ]
    return pa.Table.from_pylist(rows, schema=POSES.schema)


def reject_table(clip_id: str, reason: str, detail: str, stage: str = STAGE) -> pa.Table:
    """One ``rejects`` row."""
    row = {"clip_id": clip_id, "stage": stage, "reason": reason, "detail": detail,
           "at": datetime.now(UTC)}
    return pa.Table.from_pylist([row], schema=REJECTS.schema)


def _result(clip_id: str, poses: pa.Table | None = None, span: pa.Table | None = None,
            shard: pa.Table | None = None, reject: pa.Table | None = None) -> FacesResult:
    return FacesResult(
        clip_id=clip_id,
        poses=POSES.empty() if poses is None else poses,
        span=CLIP_SPANS.empty() if span is None else span,
        shard=FEATURE_SHARDS.empty() if shard is None else shard,
        reject=REJECTS.empty() if reject is None else reject,
    )


def _frame_range(clip: ClipInput, fps: float, total: int) -> tuple[int, int]:
    first = 0 if clip.start_s is None else round(clip.start_s * fps)
    last = total if clip.end_s is None else min(total, round(clip.end_s * fps))
    return first, last


def process_clip(clip: ClipInput, shard_dir: str | os.PathLike[str],
                 config: FacesConfig = FacesConfig()) -> FacesResult:
    """Run the faces stage on one clip.

    Returns:
        A :class:`FacesResult`: poses for every frame that was measured, and
        either the span and shard rows (shard written to
        ``shard_dir/<clip_id>.npz``) or one reject row. Never raises for bad
        media; raises only for programming errors.
    """
    from pipeline.audio import MediaError, decode_audio
    from pipeline.mfcc import mfcc_per_frame
    from pipeline.video import VideoError, probe_video, read_frames

    cid = clip.clip_id
    try:
        info = probe_video(clip.video_path)
        if info.variable_frame_rate and not config.allow_variable_frame_rate:
            raise VideoError(f"{clip.video_path}: variable frame rate", "variable_frame_rate")
        first, last = _frame_range(clip, config.fps, info.n_frames(config.fps))
        if last - first < config.span.min_frames:
            raise VideoError(f"{clip.video_path}: {last - first} frames at {config.fps} fps, "
                             f"fewer than {config.span.min_frames}", "too_short")
        samples = decode_audio(clip.video_path, start_s=first / config.fps, end_s=last / config.fps)
    except VideoError as exc:
        return _result(cid, reject=reject_table(cid, exc.reason, str(exc)))
    except MediaError as exc:
        reason = "no_audio" if "no audio" in str(exc) else "decode_error"
        return _result(cid, reject=reject_table(cid, reason, str(exc)))

    try:
        measures = measure_frames(read_frames(info, config.fps, first, last),
                                  info.width, info.height, config.tracker)
    except VideoError as exc:
        return _result(cid, reject=reject_table(cid, exc.reason, str(exc)))
    poses = poses_table(cid, measures)
    statuses = [frame_status(f, config.span) for f in frame_facts(measures, info.width, info.height)]
    decision: SpanDecision = choose_span(statuses, config.span)
    if info.variable_frame_rate:
        log.info("%s: variable frame rate source resampled to %s fps", cid, config.fps)
    if decision.reason is not None:
        log.info("%s: rejected (%s): %s", cid, decision.reason, decision.detail)
        return _result(cid, poses=poses,
                       reject=reject_table(cid, decision.reason, f"{clip.video_path}: {decision.detail}"))

    boxes = smooth_boxes(np.array([m.observation.bbox for m in measures[decision.start:decision.end]]),
                         config.crop)
    try:
        crops = np.stack([
            crop(rgb, boxes[k - first - decision.start], config.crop.size)
            for k, rgb in read_frames(info, config.fps, first + decision.start, first + decision.end)
        ])
    except VideoError as exc:
        return _result(cid, poses=poses, reject=reject_table(cid, exc.reason, str(exc)))
    if len(crops) != decision.n_frames:
        return _result(cid, poses=poses, reject=reject_table(
            cid, "decode_error", f"{clip.video_path}: {len(crops)} frames on the second pass, "
                                 f"expected {decision.n_frames}"))
    mfcc = mfcc_per_frame(samples, decision.end, fps=config.fps)[decision.start:]
    path = write_shard(Path(shard_dir) / f"{re.sub(r'[^A-Za-z0-9._-]', '_', cid)}.npz", crops, mfcc)
    record = ShardRecord(cid, clip.speaker_id, decision.start, decision.end, config.fps, str(path))
    span = pa.Table.from_pylist(
        [{"clip_id": cid, "start_frame": decision.start, "end_frame": decision.end,
          "n_frames": decision.n_frames}], schema=CLIP_SPANS.schema)
    log.info("%s: kept frames %d-%d (%s)", cid, decision.start, decision.end, decision.detail)
    return _result(cid, poses=poses, span=span, shard=records_to_table([record]))


def clip_inputs(warehouse, clip_ids: list[str]) -> list[ClipInput]:
    """``ClipInput`` of each given clip from the ``clips`` table (unknown ids are skipped)."""

    clips = warehouse.read_clips("clips", clip_ids, columns=["clip_id", "speaker_id", "video_uri", "start_s", "end_s"])
    return [ClipInput(r["clip_id"], Path(r["video_uri"]), r["speaker_id"], r["start_s"], r["end_s"])
            for r in clips.to_pylist()]


def pending_clips(warehouse, clip_ids: list[str]) -> list[str]:
    """Aligned clips (with a phoneme histogram) the faces stage has neither kept nor rejected."""
    aligned = set(warehouse.read("phoneme_histograms", columns=["clip_id"])["clip_id"].to_pylist())
    done = set(warehouse.read("clip_spans", columns=["clip_id"])["clip_id"].to_pylist())
    rejects = warehouse.read("rejects", columns=["clip_id", "stage"]).to_pylist()
    done |= {r["clip_id"] for r in rejects if r["stage"] == STAGE}
    return [c for c in clip_ids if c in aligned and c not in done]


def write_results(warehouse, results: list[FacesResult]) -> None:
    """Store a batch of results: poses replaced per clip, then shards, rejects and spans upserted.

    A span or a reject marks a clip done (:func:`pending_clips`), so they are
    written last: a run killed before them redoes the clip, never leaves a
    spanned clip without its shard row.
    """
    if not results:
        return
    warehouse.replace_clips("poses", pa.concat_tables([r.poses for r in results]),
                            [r.clip_id for r in results])
    for name, attr in (("feature_shards", "shard"), ("rejects", "reject"), ("clip_spans", "span")):
        table = pa.concat_tables([getattr(r, attr) for r in results])
        if table.num_rows:
            warehouse.upsert(name, table)
