"""Faces stage speed: face mesh frames per second on one core, and feature extraction per hour of video.

Run: ``python benchmarks/bench_faces.py [VIDEO]`` (default: the shared 512x512
speaker clip). Pinned to one CPU core so the figures are per core. Prints
figures; asserts nothing.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "media" / "WDA_AlexandriaOcasioCortez_000.mp4"


def _time_tracking(frames: list[np.ndarray], max_faces: int) -> float:
    from pipeline.faces import FaceTracker, TrackerConfig

    with FaceTracker(TrackerConfig(max_faces=max_faces)) as tracker:
        tracker.observe(frames[0])  # warm-up: model load and first detection
        start = time.perf_counter()
        for rgb in frames:
            tracker.observe(rgb)
        return (time.perf_counter() - start) / len(frames)


def main(video: Path) -> None:
    from pipeline.faces_stage import ClipInput, process_clip
    from pipeline.video import probe_video, read_frames

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cv2.setNumThreads(1)
    info = probe_video(video)
    start = time.perf_counter()
    frames = [rgb for _, rgb in read_frames(info)]
    decode = (time.perf_counter() - start) / len(frames)
    print(f"video: {video.name} {info.width}x{info.height}, {len(frames)} frames at 25 fps")
    print(f"decode + RGB convert: {decode * 1000:.2f} ms/frame")
    for size in (224, info.width):
        scaled = [cv2.resize(f, (size, size * f.shape[0] // f.shape[1])) for f in frames[:100]]
        for max_faces in (1, 2):
            per = _time_tracking(scaled, max_faces)
            print(f"face mesh {size}px, max_faces={max_faces}: {per * 1000:.2f} ms/frame = {1 / per:.0f} fps per core")
    with tempfile.TemporaryDirectory() as tmp:
        process_clip(ClipInput("warmup", video, end_s=3.0), tmp)  # imports and model load
        start = time.perf_counter()
        result = process_clip(ClipInput("bench", video), tmp)
        elapsed = time.perf_counter() - start
    seconds = info.n_frames() / 25.0
    print(f"whole faces stage (decode x2, mesh, pose, crops, MFCC, npz): {elapsed:.2f} s for {seconds:.1f} s "
          f"of video = {elapsed / seconds * 3600 / 60:.1f} core-minutes per hour of video (kept={result.kept})")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not target.is_file():
        sys.exit(f"no video at {target}; pass one as the first argument")
    main(target)
