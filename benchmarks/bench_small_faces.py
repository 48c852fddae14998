"""Small faces: the shared speaker pasted down into wide frames, tracked with and without ``small_faces``.

Run: ``python benchmarks/bench_small_faces.py [--frames 40]``. Each frame of the
512x512 speaker is scaled so that its face (the landmark box's height at full
size) is a given share of a 1920x1080 or 3840x2160 frame's height, and pasted
at 40 % of the width and height on a neutral grey background. For each size it
prints the frames where a face is found inside the pasted square, the CPU
milliseconds a frame of ``FaceTracker.observe`` (mediapipe's threads included),
and how far the head pose is from the same frame's at full size (median and
largest of |yaw|, |pitch|, |roll| differences, degrees). The last rows are
frames with no face at all. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from pipeline.faces import FaceTracker, TrackerConfig
from pipeline.measure import posed
from pipeline.video import probe_video, read_frames

SPEAKER = Path(__file__).resolve().parents[2] / "shared" / "media" / "WDA_AlexandriaOcasioCortez_000.mp4"
FRAMES = ((1920, 1080), (3840, 2160))
SHARES = (0.5, 0.3, 0.2, 0.15, 0.10, 0.07, 0.05)


def paste(rgb: np.ndarray, width: int, height: int, scale: float) -> tuple[np.ndarray, tuple[int, int, int]]:
    """``rgb`` scaled by ``scale`` on a grey (height, width) frame, and where: x0, y0, side."""
    side = round(rgb.shape[0] * scale)
    x0, y0 = max(0, int(0.4 * width - side / 2)), max(0, int(0.4 * height - side / 2))
    out = np.full((height, width, 3), 110, np.uint8)
    if side:  # scale 0: no face at all
        out[y0 : y0 + side, x0 : x0 + side] = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA)
    return out, (x0, y0, side)


def run(frames: list[np.ndarray], full: list, width: int, height: int, scale: float, small_faces: bool) -> str:
    """One row: found inside the pasted square / frames, CPU ms a frame, pose error."""
    found, cpu, errors = 0, 0.0, []
    with FaceTracker(TrackerConfig(small_faces=small_faces)) as tracker:
        for rgb, reference in zip(frames, full, strict=True):
            canvas, (x0, y0, side) = paste(rgb, width, height, scale)
            start = time.process_time()
            observation = tracker.observe(canvas)
            cpu += time.process_time() - start
            if observation.face_found:
                cx, cy = (
                    (observation.bbox[0] + observation.bbox[2]) / 2,
                    (observation.bbox[1] + observation.bbox[3]) / 2,
                )
                found += x0 <= cx <= x0 + side and y0 <= cy <= y0 + side
                measure = posed(observation, width, height)
                errors.append([abs(getattr(measure, a) - getattr(reference, a)) for a in ("yaw", "pitch", "roll")])
    error = np.nanmax(np.array(errors), axis=1) if errors else np.array([np.nan])  # worst angle of each frame
    pose = f"{np.nanmedian(error):.1f} / {np.nanmax(error):.1f}"
    return f"{found}/{len(frames)} | {1000 * cpu / len(frames):.1f} ms | {pose}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args()
    frames = [rgb for _, rgb in read_frames(probe_video(SPEAKER), stop=args.frames)]
    with FaceTracker(TrackerConfig(small_faces=False)) as tracker:
        observed = [tracker.observe(rgb) for rgb in frames]
    full = [posed(o, 512, 512) for o in observed]
    face = float(np.median([o.bbox[3] - o.bbox[1] for o in observed]))
    print(f"face height at full size: {face:.0f} px of 512")
    print("| frame | face share of height | before: found, CPU, pose error median / max | after |")
    print("|---|---|---|---|")
    for width, height in FRAMES:
        for share in (*SHARES, 0.0):
            scale = share * height / face
            rows = [run(frames, full, width, height, scale, small) for small in (False, True)]
            print(
                f"| {width}x{height} | {f'{share:.0%}' if share else 'no face'} | {rows[0]} | {rows[1]} |", flush=True
            )


if __name__ == "__main__":
    main()
