"""Video frames on a constant 25 fps grid (PyAV), upright, with their problems named.

Every later stage indexes frames as ``k`` at time ``k / fps`` from the first
video frame, the same origin :func:`pipeline.audio.decode_audio` uses, so an
MFCC window and a face crop with the same index belong together. Sources at
another rate, or with a variable frame rate, are resampled by presentation
time: output frame ``k`` is the source frame nearest to ``k / fps``.

A display matrix that rotates by a multiple of 90 degrees (phones) is applied,
so faces come out upright. A mirrored display matrix or an odd angle cannot be
trusted to reproduce what the viewer saw and raises :class:`VideoError`.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.audio import MediaError

if TYPE_CHECKING:
    import av

log = logging.getLogger(__name__)

TARGET_FPS = 25.0
"""The paper's (and VoxCeleb's) frame rate; MFCC windows are cut on this grid."""

VFR_TOLERANCE = 0.25
"""Frame intervals that differ from the median by more than this fraction mean variable frame rate."""


class VideoError(MediaError):
    """A video that cannot be used as it is; ``reason`` is the stable rejects-table reason."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class VideoInfo:
    """What the decoder found in a video file, before resampling."""

    path: Path
    source_fps: float  # mean rate from presentation times
    source_frames: int
    width: int  # upright, after the display rotation
    height: int
    rotation: int  # degrees counter-clockwise applied for display: 0, 90, 180 or 270
    variable_frame_rate: bool
    duration_s: float

    def n_frames(self, fps: float = TARGET_FPS) -> int:
        """Frames on the resampled grid."""
        return max(0, math.floor(self.duration_s * fps + 1e-6))


def _open(path: Path):
    import av

    if not path.is_file():
        raise VideoError(f"{path}: no such video file", "decode_error")
    try:
        container = av.open(os.fspath(path))
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: not a readable media file ({exc})", "decode_error") from exc
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: no video stream", "no_video")
    return container


def _display_transform(path: Path, frame) -> int:
    """Counter-clockwise display rotation in degrees from the frame's display matrix."""
    import av

    matrix = next((sd for sd in frame.side_data if sd.type == av.sidedata.sidedata.Type.DISPLAYMATRIX), None)
    if matrix is None:
        return 0
    m = struct.unpack("<9i", bytes(matrix)[:36])
    a, b, c, d = (v / 65536.0 for v in (m[0], m[1], m[3], m[4]))
    if a * d - b * c < 0:
        raise VideoError(f"{path}: mirrored display matrix", "mirrored_video")
    # FFmpeg's av_display_rotation_get: angle of the matrix, counter-clockwise positive.
    degrees = -math.degrees(math.atan2(b / math.hypot(b, d), a / math.hypot(a, c)))
    rounded = round(degrees / 90.0) * 90
    if abs(degrees - rounded) > 1.0:
        raise VideoError(f"{path}: display rotation {degrees:.1f} deg is not a multiple of 90", "rotated_video")
    return rounded % 360


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(rgb, k=rotation // 90)) if rotation else rgb


def _stream_origin(stream) -> float:
    return 0.0 if stream.start_time is None else float(stream.start_time * stream.time_base)


def _shown(packet) -> bool:
    """Whether a packet is a frame the viewer sees: timed, not empty, and not cut off by an edit list.

    A cut made without re-encoding (``ffmpeg -ss -c copy``, ``yt-dlp --download-sections``,
    a phone's trim) keeps the packets from the keyframe before the cut and marks
    those before it as discarded; the decoder drops them, so counting them would
    stretch the duration and pad the end with copies of the last frame.
    """
    return packet.pts is not None and packet.size > 0 and not packet.is_discard


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Read packet times (no full decode) and the first frame's display matrix.

    Raises:
        VideoError: missing or unreadable file, no video, mirrored or odd rotation,
            no timestamps.
    """
    import av

    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        try:
            times = sorted(float(p.pts * p.time_base) for p in container.demux(stream) if _shown(p))
            container.seek(0)
            first = next(container.decode(stream), None)
        except av.FFmpegError as exc:
            raise VideoError(f"{path}: corrupt video ({exc})", "decode_error") from exc
        if first is None or len(times) < 2:
            raise VideoError(f"{path}: fewer than 2 video frames with timestamps", "decode_error")
        rotation = _display_transform(path, first)
        width, height = first.width, first.height
    intervals = np.diff(times)
    median = float(np.median(intervals))
    if median <= 0:
        raise VideoError(f"{path}: duplicate video timestamps", "decode_error")
    variable = bool(np.any(np.abs(intervals - median) > VFR_TOLERANCE * median))
    if rotation in (90, 270):
        width, height = height, width
    return VideoInfo(
        path=path, source_fps=1.0 / median, source_frames=len(times), width=width,
        height=height, rotation=rotation, variable_frame_rate=variable,
        duration_s=times[-1] - times[0] + median,
    )


def read_frames(
    info: VideoInfo, fps: float = TARGET_FPS, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Upright RGB frames ``(k, (H, W, 3) uint8)`` on the ``fps`` grid, for ``start <= k < stop``.

    Output frame ``k`` is the source frame whose presentation time is nearest
    to ``k / fps`` (measured from the first frame).
    """
    import av

    stop = info.n_frames(fps) if stop is None else min(stop, info.n_frames(fps))
    if start >= stop:
        return
    k = start
    prev: tuple[float, av.VideoFrame] | None = None
    try:
        for t, frame in _timed_frames(info.path, start / fps):
            if prev is not None:
                boundary = (prev[0] + t) / 2.0  # nearest source frame in time
                while k < stop and k / fps < boundary:
                    yield k, _upright(prev[1].to_ndarray(format="rgb24"), info.rotation)
                    k += 1
                if k >= stop:
                    return
            prev = (t, frame)
    except av.FFmpegError as exc:
        raise VideoError(f"{info.path}: corrupt video at frame {k} ({exc})", "decode_error") from exc
    while prev is not None and k < stop:
        yield k, _upright(prev[1].to_ndarray(format="rgb24"), info.rotation)
        k += 1


def _timed_frames(path: Path, start_s: float) -> Iterator[tuple[float, av.VideoFrame]]:
    """Decoded frames with their times from the first frame, from one at or before ``start_s`` on.

    A seek lands on a keyframe before its target in most containers; in MPEG-TS
    (HLS downloads, and yt-dlp's output without ffmpeg to remux it) the demuxer
    can land after it, and the decoder then starts at the next keyframe: frames
    later than ``start_s`` would stand in for the ones asked for (or none come
    at all). There the video is decoded again from its start.
    """
    if start_s > 0:
        with _open(path) as container:
            frames = _decoded(container, seek_s=max(0.0, start_s - 1.0))
            first = next(frames, None)
            if first is not None and first[0] <= start_s:
                yield first
                yield from frames
                return
        log.debug("%s: a seek to %.2f s landed after it; decoding from the start", path, start_s)
    with _open(path) as container:
        yield from _decoded(container, seek_s=None)


def _decoded(container: av.container.InputContainer, seek_s: float | None) -> Iterator[tuple[float, av.VideoFrame]]:
    """The first video stream's frames with their times from its first frame, after a seek to ``seek_s``."""
    stream = container.streams.video[0]
    # One decoding thread: clips run in parallel (one per worker), so frame threads would
    # only put more threads on each core (measured: the same CPU per frame either way).
    stream.codec_context.thread_count = 1
    origin = _stream_origin(stream)
    if seek_s is not None:
        container.seek(math.floor((origin + seek_s) / stream.time_base), stream=stream, backward=True)
    for frame in container.decode(stream):
        if frame.pts is not None:
            yield float(frame.pts * frame.time_base) - origin, frame


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float = 25.0,
                samples: np.ndarray | None = None, sample_rate: int = 16000) -> int:
    """Write RGB frames as H.264 (yuv420p) and, if given, mono float samples as AAC.

    The one muxer of the project: generated videos, overlays and the demo corpus.

    Args:
        frames: (H, W, 3) uint8 RGB images, all the same size; odd sizes are
            cropped by one pixel (yuv420p needs even ones).
        fps: frame rate; fractional rates such as 29.97 are kept exactly enough.
        samples: mono audio in [-1, 1], or None for a silent video.

    Returns:
        The number of frames written.

    Raises:
        ValueError: naming ``path``, when there are no frames or its name is no format that takes H.264.
        warehouse.durable.WriteFailed: naming ``path``, when it cannot be written.
    """
    import av

    from warehouse.durable import WriteFailed

    path.parent.mkdir(parents=True, exist_ok=True)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"{path}: no frames to write")
    container, video, audio = open_output(path, first.shape, fps, None if samples is None else sample_rate)
    written = 0
    try:
        with container:
            for rgb in itertools.chain([first], frames):
                image = np.ascontiguousarray(rgb[: video.height, : video.width])
                container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
                written += 1
            container.mux(video.encode())
            if audio is not None:
                block = 1024
                for start in range(0, len(samples), block):
                    piece = np.ascontiguousarray(samples[start:start + block], np.float32)[None]  # (1, n)
                    frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
                    frame.sample_rate = sample_rate
                    frame.pts = start
                    container.mux(audio.encode(frame))
                container.mux(audio.encode())
    except OSError as exc:  # a full disk; PyAV's errors name no file
        raise WriteFailed(path, "video", exc) from exc
    return written


def open_output(path: Path, shape: tuple[int, ...], fps: float,
                 sample_rate: int | None) -> tuple[av.container.OutputContainer, av.VideoStream, av.AudioStream | None]:
    """``path`` opened for H.264 video of frames of ``shape`` (and AAC audio at ``sample_rate``, unless None).

    Every stream exists before the first packet is muxed (the header is written
    then). PyAV's errors here name no file ("[Errno 2] No such file or
    directory", "Could not determine output format", "'image2' format does not
    support 'libx264' codec"): they are raised again naming ``path``.
    """
    from fractions import Fraction

    import av

    from warehouse.durable import WriteFailed

    try:
        container = av.open(str(path), mode="w")
    except OSError as exc:
        raise WriteFailed(path, "video", exc) from exc
    except ValueError as exc:
        raise ValueError(f"{path}: cannot write a video in this format ({exc})") from exc
    try:
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        video.height, video.width = shape[0] // 2 * 2, shape[1] // 2 * 2
        video.pix_fmt = "yuv420p"
        audio = None if sample_rate is None else container.add_stream("aac", rate=sample_rate, layout="mono")
    except ValueError as exc:
        container.close()
        raise ValueError(f"{path}: cannot write a video in this format ({exc})") from exc
    return container, video, audio
