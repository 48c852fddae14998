"""Faces stage cost per part, in core-seconds per second of video, on one core.

Run: ``python benchmarks/bench_faces.py [--landmark-every 2,5,10] [VIDEO ...]`` (default: the shared
512x512 speaker clip). Pinned to one CPU core, OpenCV single-threaded, CPU
time of the whole process (mediapipe's graph threads included). Each part is
timed alone on the whole clip, in the order the stage runs them; then the
whole stage (``process_clip``), which also holds the table building. Shard
codecs are compared on the clip's crops. Then the face mesh on keyframes
(``pipeline.measure``, ``--landmark-every``) against every frame: CPU of the
tracking and pose, frames interpolated, frames whose valid/invalid status or
kept span changes, and how far the interpolated and keyframe poses and boxes
are from every frame's own measurement. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "media" / "WDA_AlexandriaOcasioCortez_000.mp4"

T = TypeVar("T")


def cpu(work: Callable[[], T]) -> tuple[float, T]:
    """CPU seconds of this process (all its threads) spent in ``work()``, and its result."""
    start = time.process_time()
    result = work()
    return time.process_time() - start, result


def _zip(arrays: dict[str, np.ndarray], level: int | None) -> bytes:
    """An ``.npz`` as numpy writes it, deflated at ``level`` (None: stored)."""
    buffer = io.BytesIO()
    method = zipfile.ZIP_STORED if level is None else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buffer, "w", method, compresslevel=level) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, array)
    return buffer.getvalue()


def parts(video: Path) -> None:
    """Each part of the stage on ``video``, and the whole stage, per second of video."""
    from pipeline.audio import decode_audio
    from pipeline.crops import crop, smooth_boxes
    from pipeline.faces import FaceTracker, TrackerConfig
    from pipeline.faces_stage import ClipInput, process_clip
    from pipeline.mfcc import mfcc_per_frame
    from pipeline.pose import head_pose
    from pipeline.video import probe_video, read_frames

    info = probe_video(video)
    seconds = info.n_frames() / 25.0
    rows: list[tuple[str, float]] = []
    decode, frames = cpu(lambda: [rgb for _, rgb in read_frames(info)])
    rows.append(("decode + RGB", decode))
    for name, config in (("face mesh, other faces counted every frame", TrackerConfig(recount_every=1)),
                         ("face mesh, other faces counted every 5th frame", TrackerConfig()),
                         ("face mesh, one face (no count)", TrackerConfig(max_faces=1))):
        with FaceTracker(config) as tracker:
            tracker.observe(frames[0])  # model load and first detection
            used, observations = cpu(lambda t=tracker: [t.observe(rgb) for rgb in frames])
        rows.append((name, used))
    found = [o for o in observations if o.landmarks is not None]
    rows.append(("head pose", cpu(lambda: [head_pose(o.landmarks, info.width, info.height) for o in found])[0]))
    boxes = smooth_boxes(np.array([o.bbox for o in found]))
    crops_s, crops = cpu(lambda: np.stack([crop(rgb, box) for rgb, box in zip(frames, boxes, strict=False)]))
    rows.append(("crops", crops_s))
    decode_audio(video)  # imports
    samples_s, samples = cpu(lambda: decode_audio(video))
    mfcc_per_frame(samples, 25)  # librosa's first-call compilation
    mfcc_s, mfcc = cpu(lambda: mfcc_per_frame(samples, len(crops)))
    rows += [("audio decode", samples_s), ("MFCC", mfcc_s)]
    shard = {"frames": crops, "mfcc": mfcc}
    raw = sum(a.nbytes for a in shard.values())
    for name, level in (("shard, np.savez_compressed (deflate 6)", 6), ("shard, deflate 1", 1),
                        ("shard, stored (np.savez)", None)):
        used, data = cpu(lambda lv=level: _zip(shard, lv))
        rows.append((f"{name}: {len(data) / raw:.0%} of raw", used))
    with tempfile.TemporaryDirectory() as tmp:
        process_clip(ClipInput("warmup", video, end_s=3.0), tmp)
        whole, result = cpu(lambda: process_clip(ClipInput("bench", video), tmp))
    rows.append((f"whole stage (process_clip; kept={result.reject is None})", whole))

    print(f"{video.name}: {info.width}x{info.height}, {info.n_frames()} frames at 25 fps ({seconds:.1f} s)")
    width = max(len(name) for name, _ in rows)
    for name, used in rows:
        print(f"  {name:<{width}}  {used / seconds:.4f} core-s per s  ({used / info.n_frames() * 1000:.2f} ms/frame)")


def keyframes(video: Path, steps: list[int]) -> None:
    """Tracking and pose on every ``k``-th frame (frames between interpolated) against every frame."""
    from pipeline.faces import TrackerConfig
    from pipeline.faces_stage import frame_facts
    from pipeline.measure import KeyframeConfig, measure_frames
    from pipeline.spans import SpanConfig, choose_span, frame_status
    from pipeline.video import probe_video, read_frames

    info = probe_video(video)
    frames = list(read_frames(info))
    seconds = len(frames) / 25.0
    measure_frames(frames, info.width, info.height, TrackerConfig())  # model load, warm caches: not timed
    print(f"{video.name}: face mesh on keyframes against every frame ({len(frames)} frames)")
    print("  every  core-s per s  interpolated  status changed  span        "
          "yaw error p50/p95/max  pitch p95  roll p95  box error p95/max (px)")
    base = None
    for step in [1, *steps]:
        used, measures = cpu(lambda k=step: measure_frames(frames, info.width, info.height, TrackerConfig(),
                                                           KeyframeConfig(every=k)))
        statuses = [frame_status(f, SpanConfig()) for f in frame_facts(measures, info.width, info.height)]
        span = choose_span(statuses, SpanConfig())
        line = (f"  {step:>5}  {used / seconds:>12.4f}  {sum(m.interpolated for m in measures):>12}"
                f"  {sum(a != b for a, b in zip(statuses, base[1])) if base else 0:>14}"
                f"  {f'{span.start}-{span.end}' if span.reason is None else span.reason:<10}")
        if base is None:
            base = (measures, statuses)
        else:
            pairs = [(a, b) for a, b in zip(measures, base[0], strict=True)
                     if a.observation.bbox is not None and b.observation.bbox is not None]
            error = {angle: np.array([abs(getattr(a, angle) - getattr(b, angle)) for a, b in pairs])
                     for angle in ("yaw", "pitch", "roll")}
            box = np.array([np.abs(np.subtract(a.observation.bbox, b.observation.bbox)).max() for a, b in pairs])
            yaw = error["yaw"]
            line += (f"  {np.median(yaw):>6.2f} / {np.percentile(yaw, 95):.2f} / {yaw.max():.2f}"
                     f"  {np.percentile(error['pitch'], 95):>9.2f}  {np.percentile(error['roll'], 95):>8.2f}"
                     f"  {np.percentile(box, 95):>8.1f} / {box.max():.1f}")
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", type=Path, default=[DEFAULT])
    parser.add_argument("--landmark-every", default="2,5,10",
                        help="keyframe steps compared with every frame, comma-separated ('' to skip)")
    args = parser.parse_args()
    missing = [v for v in args.videos if not v.is_file()]
    if missing:
        sys.exit(f"no video at {', '.join(map(str, missing))}; pass videos as arguments")
    steps = [int(k) for k in args.landmark_every.split(",") if k]
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cv2.setNumThreads(1)
    from pipeline.audio import MediaError

    for video in args.videos:
        try:
            parts(video)
        except MediaError as exc:  # the stage needs audio; keyframes do not
            print(f"{video.name}: stage parts skipped ({exc})")
        if steps:
            keyframes(video, steps)


if __name__ == "__main__":
    main()
