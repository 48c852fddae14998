"""Audio decoding on the video's timeline, and media probing (PyAV).

Alignment times must index video frames: sample 0 of what
:func:`decode_audio` returns is time 0 of the video. Two things can break that
and both are handled here. AAC (and Opus) streams start with encoder priming
samples that the container's edit list marks as "before time 0" (about 46 ms
at 22 kHz, 64 ms at 16 kHz); the decoder's frames carry presentation times,
so samples are placed by those times instead of by their count. And a video's
audio stream may start a little before or after its first video frame; the
video's start is the origin, so audio before it is dropped and a late start
is padded with silence.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

log = logging.getLogger(__name__)

Seconds = float

SAMPLE_RATE = 16000
"""The rate every stage works at: alignment models and MFCC features expect 16 kHz."""

_DOWNMIX = {"rematrix_maxval": "1.0"}
"""libswresample options of the mono downmix: channels are averaged, not summed.

Without a bound, ffmpeg mixes each front channel into mono at 0.707 (its
float output is never normalised), so a stereo track with the same signal in
both channels comes out 1.41 times louder and clips wherever it peaks above
0.707 (a loudness-normalised download does); 1.0 scales the matrix to the
channels' mean, which leaves a mono source unchanged.
"""

_GAP_S: Seconds = 0.05
"""A frame this much later than the samples before it end follows lost packets (a live recording, a
damaged download): silence fills the gap, so that later samples stay at their times. Smaller
differences are the resampler's own delay and timestamp rounding."""

_SEEK_MARGIN_S: Seconds = 1.0
"""Seek this far before ``start_s``: the decoder needs a frame of history after a seek."""


class MediaError(ValueError):
    """A media file that cannot be used: unreadable, corrupt, truncated, or without audio.

    The message always names the file, so a rejected clip can be traced.
    """


@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds; the ``clips`` table stores these fields."""

    path: Path
    duration_s: Seconds  # of the longest stream, from the video's time 0
    has_audio: bool
    has_video: bool
    fps: float | None  # video frame rate, None without video
    width: int | None
    height: int | None


def _open(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise MediaError(f"{path}: no such media file")
    try:
        return av.open(os.fspath(path))
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: not a readable media file ({exc})") from exc


def _stream_start(stream: av.stream.Stream) -> Seconds:
    if stream.start_time is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def _origin(container: av.container.InputContainer) -> Seconds:
    """Time 0 of the clip: the first video frame, or the audio start for audio-only files."""
    streams = container.streams.video or container.streams.audio
    return _stream_start(streams[0]) if streams else 0.0


def probe_media(path: str | os.PathLike[str]) -> MediaInfo:
    """Read the container header of ``path`` (no decoding; packets are read only where the header
    holds no duration).

    Raises:
        MediaError: the file is missing or not a media file ffmpeg can open.
    """
    path = Path(path)
    with _open(path) as container:
        duration = _duration(path, container)
        video = container.streams.video[0] if container.streams.video else None
        rate = video.average_rate or video.base_rate if video is not None else None
        return MediaInfo(
            path=path,
            duration_s=float(duration),
            has_audio=bool(container.streams.audio),
            has_video=video is not None,
            fps=float(rate) if rate else None,
            width=video.codec_context.width if video is not None else None,
            height=video.codec_context.height if video is not None else None,
        )


def _duration(path: Path, container: av.container.InputContainer) -> Seconds:
    """Seconds from the video's time 0 to the end of the longest audio or video stream.

    From the streams' headers, else the container's; a file written live (a
    Matroska recording of a stream, one cut off before its header was finished)
    holds neither, and its last packet says where it ends.
    """
    origin = _origin(container)
    ends = [
        _stream_start(s) + float(s.duration * s.time_base) - origin
        for s in container.streams
        if s.duration is not None and s.type in ("audio", "video")
    ]
    if ends:
        return max(ends)
    if container.duration is not None:
        return container.duration / av.time_base
    streams = [*container.streams.video, *container.streams.audio]
    try:
        last = max((float((p.pts + (p.duration or 0)) * p.time_base) for p in container.demux(*streams)
                    if p.pts is not None), default=origin)
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: no duration in the header and unreadable packets ({exc})") from exc
    return last - origin


def decode_audio(
    path: str | os.PathLike[str],
    sample_rate: int = SAMPLE_RATE,
    start_s: Seconds | None = None,
    end_s: Seconds | None = None,
) -> np.ndarray:
    """Decode the first audio stream of ``path`` to float32 mono in [-1, 1].

    Sample ``i`` of the result lies at ``start_s + i / sample_rate`` seconds on
    the video's timeline (see the module docstring for priming and offsets).

    Args:
        path: any container ffmpeg reads (mp4, mkv, webm, wav, flac, ...).
        sample_rate: output rate in Hz.
        start_s: first second to return (default: the start).
        end_s: second to stop at, exclusive (default: the end). A range past the
            end of the media returns what exists; callers compare lengths.

    Returns:
        A 1-D float32 array.

    Raises:
        MediaError: missing, corrupt or truncated file, no audio stream, or no
            audio decoded in the range.
        ValueError: a negative or empty range.
    """
    path = Path(path)
    begin = 0.0 if start_s is None else float(start_s)
    if begin < 0 or (end_s is not None and end_s <= begin):
        raise ValueError(f"{path}: bad audio range start_s={start_s} end_s={end_s}")
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: no audio stream")
        stream = container.streams.audio[0]
        origin = _origin(container)
        try:
            first, samples = _decode(container, stream, sample_rate, origin, begin, end_s)
        except av.FFmpegError as exc:
            raise MediaError(f"{path}: corrupt or truncated audio ({exc})") from exc
    if first is None:
        raise MediaError(f"{path}: no audio decoded from {begin:.3f}s")
    # Place the decoded run on the timeline: drop what precedes `begin`, pad a late start.
    lead = round((begin - first) * sample_rate)
    samples = samples[lead:] if lead >= 0 else np.concatenate([np.zeros(-lead, np.float32), samples])
    if end_s is not None:
        samples = samples[: round((end_s - begin) * sample_rate)]
    if samples.size == 0:
        raise MediaError(f"{path}: no audio between {begin:.3f}s and {end_s}s")
    return np.clip(samples, -1.0, 1.0, out=samples)


def _decode(
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    sample_rate: int,
    origin: Seconds,
    begin: Seconds,
    end_s: Seconds | None,
) -> tuple[Seconds | None, np.ndarray]:
    """Decode from just before ``begin``; returns the clip time of the first sample and the samples."""
    if begin - _SEEK_MARGIN_S > 0:
        target = (origin + begin - _SEEK_MARGIN_S) / stream.time_base
        container.seek(math.floor(target), stream=stream, backward=True)
    mono = _MonoResampler(sample_rate)
    chunks: list[np.ndarray] = []
    placed = 0  # samples in chunks
    first: Seconds | None = None
    for frame in container.decode(stream):
        if frame.pts is None:
            continue  # no timestamp to place it by; only seen on broken streams
        t = float(frame.pts * frame.time_base) - origin
        if first is None:
            first = t
        elif t - (first + placed / sample_rate) > _GAP_S:  # packets lost before this frame
            held = mono.flush()
            placed += sum(len(c) for c in held)
            held.append(np.zeros(round((t - first) * sample_rate) - placed, np.float32))
            chunks.extend(held)
            placed += len(held[-1])
        new = mono.resample(frame)
        chunks.extend(new)
        placed += sum(len(c) for c in new)
        if end_s is not None and t > end_s:
            break
    chunks.extend(mono.flush())
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    return first, samples


class _MonoResampler:
    """Frames of any format, layout and rate to float32 mono at one rate, in order.

    A stream may change these mid-way: HLS segments joined into one file (yt-dlp's
    own HLS download), a live recording whose encoder was restarted. PyAV's
    resampler is fixed to its first frame's input and raises a bare ValueError on
    another, so each change flushes the resampler and starts a new one.
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._resampler: av.AudioResampler | None = None
        self._input: tuple[str, str, int] | None = None

    def resample(self, frame: av.AudioFrame) -> list[np.ndarray]:
        """The samples ``frame`` completes (the resampler may hold some back until the next)."""
        held = []
        if (frame.format.name, frame.layout.name, frame.sample_rate) != self._input:
            held = self.flush()
            self._input = (frame.format.name, frame.layout.name, frame.sample_rate)
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self.sample_rate,
                                                options=_DOWNMIX)
        return held + [out.to_ndarray().reshape(-1) for out in self._resampler.resample(frame)]

    def flush(self) -> list[np.ndarray]:
        """The samples still held back; the next frame starts a new resampler."""
        if self._resampler is None:
            return []
        held = [out.to_ndarray().reshape(-1) for out in self._resampler.resample(None)]
        self._resampler = self._input = None
        return held
