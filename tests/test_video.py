"""Decoding onto the 25 fps grid: resampling, rotation, mirrored and broken files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from fixtures.faces_media import carphone  # noqa: F401  (session fixture)
from fixtures.media import write_media
from pipeline.video import VideoError, probe_video, read_frames


def _write(path: Path, times: list[float], rotation: float | None = None, hflip: bool = False,
           size: tuple[int, int] = (48, 64), keyframe_every: int = 12, codec: str = "mpeg4") -> Path:
    """Video whose frame j is gray level 10*j (asymmetric marker top-left) shown at ``times[j]``."""
    container = av.open(str(path), "w")
    stream = container.add_stream(codec, rate=3000)
    stream.codec_context.gop_size = keyframe_every
    stream.height, stream.width = size
    stream.pix_fmt, stream.time_base = "yuv420p", Fraction(1, 3000)
    if rotation is not None:
        stream.set_display_rotation(rotation, hflip=hflip)
    for j, t in enumerate(times):
        image = np.full((*size, 3), 10 * j, np.uint8)
        image[:8, :16] = 255  # marker: top-left, wider than tall
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = round(t * 3000), Fraction(1, 3000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return path


def _level(rgb: np.ndarray) -> int:
    return int(round(np.median(rgb[16:, 16:]) / 10))


def test_constant_30fps_is_resampled_to_the_nearest_frames(tmp_path):
    times = [j / 30 for j in range(24)]
    info = probe_video(_write(tmp_path / "v30.mp4", times))
    assert info.source_fps == pytest.approx(30.0, rel=1e-3)
    assert not info.variable_frame_rate
    assert info.n_frames() == 20  # 0.8 s at 25 fps
    frames = list(read_frames(info))
    assert [k for k, _ in frames] == list(range(20))
    expected = [int(np.argmin(np.abs(np.array(times) - k / 25))) for k in range(20)]
    assert [_level(rgb) for _, rgb in frames] == expected


def test_variable_frame_rate_is_detected_and_resampled_by_time(tmp_path):
    times = [0.0, 0.04, 0.08, 0.2, 0.24, 0.41, 0.49, 0.53]  # no k/25 equidistant from two
    info = probe_video(_write(tmp_path / "vfr.mp4", times))
    assert info.variable_frame_rate
    levels = [_level(rgb) for _, rgb in read_frames(info)]
    expected = [int(np.argmin(np.abs(np.array(times) - k / 25))) for k in range(len(levels))]
    assert levels == expected


def test_a_range_of_frames_matches_the_full_decode(tmp_path):
    info = probe_video(_write(tmp_path / "v.mp4", [j / 25 for j in range(20)]))
    full = [_level(rgb) for _, rgb in read_frames(info)]
    part = list(read_frames(info, start=7, stop=12))
    assert [k for k, _ in part] == [7, 8, 9, 10, 11]
    assert [_level(rgb) for _, rgb in part] == full[7:12]


@pytest.mark.parametrize(("start", "stop"), [(3, 7), (14, 18), (23, 25)])
def test_a_range_of_an_mpeg_ts_with_sparse_keyframes_matches_the_full_decode(tmp_path, start, stop):
    # A seek in MPEG-TS can land after its target: the frames of the next keyframe stood in for the
    # ones asked for (levels 10, 10, 10, 10 for frames 3-6), or none came at all.
    info = probe_video(_write(tmp_path / "v.ts", [j / 25 for j in range(25)], keyframe_every=10, codec="libx264"))
    full = [_level(rgb) for _, rgb in read_frames(info)]
    assert full == list(range(25))
    part = list(read_frames(info, start=start, stop=stop))
    assert [k for k, _ in part] == list(range(start, stop))
    assert [_level(rgb) for _, rgb in part] == full[start:stop]


def _cut_without_reencoding(source: Path, path: Path, cut_s: float) -> Path:
    """``source`` from ``cut_s`` on as ``ffmpeg -ss CUT -c copy`` writes it: every packet from the keyframe
    at 0 kept, times shifted so the cut is time 0; the mp4 edit list marks the packets before it discarded."""
    with av.open(str(source)) as src, av.open(str(path), "w") as out:
        stream = src.streams.video[0]
        copy = out.add_stream_from_template(stream)
        shift = round(cut_s / stream.time_base)
        for packet in src.demux(stream):
            if packet.dts is None:
                continue
            packet.pts, packet.dts, packet.stream = packet.pts - shift, packet.dts - shift, copy
            out.mux(packet)
    return path


def test_packets_an_edit_list_cuts_off_count_neither_in_duration_nor_frames(tmp_path):
    whole = _write(tmp_path / "whole.mp4", [j / 25 for j in range(24)])
    info = probe_video(_cut_without_reencoding(whole, tmp_path / "cut.mp4", 0.2))  # 5 frames before the cut
    assert (info.source_frames, info.n_frames()) == (19, 19)
    assert info.duration_s == pytest.approx(0.76)
    assert [_level(rgb) for _, rgb in read_frames(info)] == list(range(5, 24))  # no copies of the last frame


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_display_rotation_is_applied(tmp_path, rotation):
    plain = probe_video(_write(tmp_path / "plain.mp4", [0.0, 0.04, 0.08]))
    rotated = probe_video(_write(tmp_path / "rot.mp4", [0.0, 0.04, 0.08], rotation=rotation))
    assert rotated.rotation == rotation % 360
    upright = next(read_frames(plain))[1]
    shown = next(read_frames(rotated))[1]
    assert shown.shape == np.rot90(upright, k=rotation // 90).shape
    assert (rotated.width, rotated.height) == (shown.shape[1], shown.shape[0])
    # Counter-clockwise display rotation: the top-left marker ends where np.rot90 puts it.
    np.testing.assert_allclose(shown.astype(int), np.rot90(upright, k=rotation // 90).astype(int), atol=12)


def test_mirrored_video_is_refused(tmp_path):
    path = _write(tmp_path / "mirror.mp4", [0.0, 0.04, 0.08], rotation=0, hflip=True)
    with pytest.raises(VideoError, match="mirror") as err:
        probe_video(path)
    assert err.value.reason == "mirrored_video"


def test_missing_file_audio_only_and_garbage(tmp_path):
    with pytest.raises(VideoError, match="nope.mp4") as err:
        probe_video(tmp_path / "nope.mp4")
    assert err.value.reason == "decode_error"
    audio_only = write_media(tmp_path / "a.m4a", np.zeros(16000, np.float32), rate=16000)
    with pytest.raises(VideoError, match="no video") as err:
        probe_video(audio_only)
    assert err.value.reason == "no_video"
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoError, match="garbage.mp4"):
        probe_video(garbage)


def test_real_29_97_fps_clip(carphone):
    info = probe_video(carphone)
    assert (info.width, info.height, info.source_frames) == (176, 144, 120)
    assert info.source_fps == pytest.approx(30000 / 1001, rel=1e-3)
    assert info.n_frames() == 100
    frames = dict(read_frames(info, start=40, stop=45))
    with av.open(str(carphone)) as container:
        source = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    for k, rgb in frames.items():
        np.testing.assert_array_equal(rgb, source[round(k / 25 * 30000 / 1001)])
