"""Draw what the faces stage saw onto a clip, so a person can check the filter by eye.

Each frame gets its landmarks, the head pose angles, the frame status and a
bar that is green inside the kept span. Output is a contact sheet (PNG, every
n-th frame) or the whole clip as video (MP4).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.spans import OK, SpanDecision
from pipeline.video import write_video

log = logging.getLogger(__name__)

GREEN, RED, YELLOW, WHITE = (0, 200, 0), (220, 0, 0), (255, 220, 0), (255, 255, 255)


@dataclass(frozen=True)
class OverlayConfig:
    """What to render."""

    every: int = 5  # contact sheet: one tile per this many frames
    columns: int = 6  # contact sheet tiles per row
    tile_width: int = 256  # contact sheet tile width in pixels


def draw_frame(rgb: np.ndarray, k: int, measure, status: str, span: SpanDecision) -> np.ndarray:
    """A copy of ``rgb`` with landmarks, angles, status and the kept-span bar drawn on it."""
    import cv2

    out = rgb.copy()
    height, width = out.shape[:2]
    scale = max(0.7, max(width, height) / 512)
    landmarks = measure.observation.landmarks
    if landmarks is not None:
        colour = GREEN if status == OK else RED
        for x, y in landmarks[:, :2].astype(int):
            cv2.circle(out, (int(x), int(y)), max(1, round(scale)), colour, -1)
    kept = span.reason is None and span.start <= k < span.end
    cv2.rectangle(out, (0, height - max(4, round(8 * scale))), (width, height), GREEN if kept else RED, -1)
    lines = [f"#{k} {status}{' KEPT' if kept else ''}",
             f"faces {measure.observation.n_faces}{' (interpolated)' if measure.interpolated else ''}"]
    if landmarks is not None:
        lines.append(f"yaw {measure.yaw:+.0f} pitch {measure.pitch:+.0f} roll {measure.roll:+.0f}")
    for i, text in enumerate(lines):
        cv2.putText(out, text, (4, round((16 + 16 * i) * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45 * scale, YELLOW, max(1, round(scale)), cv2.LINE_AA)
    return out


def contact_sheet(tiles: list[np.ndarray], columns: int, tile_width: int) -> np.ndarray:
    """Tiles resized to ``tile_width`` and laid out row by row (black fill)."""
    import cv2

    if not tiles:
        raise ValueError("contact_sheet: no frames to draw")
    h, w = tiles[0].shape[:2]
    tile_height = round(h * tile_width / w)
    rows = -(-len(tiles) // columns)
    sheet = np.zeros((rows * tile_height, min(columns, len(tiles)) * tile_width, 3), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * tile_height:(r + 1) * tile_height, c * tile_width:(c + 1) * tile_width] = cv2.resize(
            tile, (tile_width, tile_height), interpolation=cv2.INTER_AREA)
    return sheet


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB image as a PNG file, whole or not at all.

    Not ``cv2.imwrite``: it reports a failed write only by returning False, and
    the command would announce a sheet that is not there.

    Raises:
        warehouse.durable.WriteFailed: naming ``path``, when it cannot be written.
    """
    import cv2

    from warehouse.durable import write_atomically

    _, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    write_atomically(path, lambda handle: handle.write(encoded.tobytes()), "overlay")


def render_overlay(video: Path, out: Path, faces_config, overlay: OverlayConfig = OverlayConfig()) -> SpanDecision:
    """Track ``video``, apply the span rule and write the annotated PNG sheet or MP4.

    Returns:
        The span decision drawn, so the caller can report it.

    Raises:
        ValueError: ``out`` is neither .png nor .mp4.
        pipeline.video.VideoError: the video cannot be decoded.
        warehouse.durable.WriteFailed: the contact sheet cannot be written.
    """
    from pipeline.cores import one_core
    from pipeline.faces_stage import frame_facts
    from pipeline.measure import measure_frames
    from pipeline.spans import choose_span, frame_status
    from pipeline.video import probe_video, read_frames

    suffix = out.suffix.lower()
    if suffix not in (".png", ".mp4"):
        raise ValueError(f"{out}: output must be a .png contact sheet or an .mp4 video")
    info = probe_video(video)
    with one_core(faces_config.pin_core):  # as the faces stage tracks a clip
        measures = measure_frames(read_frames(info, faces_config.fps), info.width, info.height,
                                  faces_config.tracker, faces_config.keyframes)
    statuses = [frame_status(f, faces_config.span) for f in frame_facts(measures, info.width, info.height)]
    span = choose_span(statuses, faces_config.span)
    frames = read_frames(info, faces_config.fps)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        tiles = [draw_frame(rgb, k, measures[k], statuses[k], span)
                 for k, rgb in frames if k % overlay.every == 0 and k < len(measures)]
        write_png(out, contact_sheet(tiles, overlay.columns, overlay.tile_width))
    else:
        write_video(out, (draw_frame(rgb, k, measures[k], statuses[k], span)
                           for k, rgb in frames if k < len(measures)), faces_config.fps)
    log.info("%s: %s -> %s", video, span.detail, out)
    return span
