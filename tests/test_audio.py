"""decode_audio / probe_media on real encoded files (AAC priming, Opus, WAV) and bad media."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from fixtures.media import tone_after, write_media, write_wav
from pipeline.audio import MediaError, decode_audio, probe_media

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
ONSET = 0.5


def onset_s(samples: np.ndarray, rate: int = 16000) -> float:
    return float(np.argmax(np.abs(samples) > 0.05)) / rate


@pytest.mark.parametrize(("suffix", "codec", "rate"), [
    (".mp4", "aac", 44100), (".mp4", "aac", 16000), (".webm", "libopus", 48000), (".mkv", "flac", 22050),
])  # fmt: skip
def test_tone_onset_is_on_the_video_timeline(tmp_path: Path, suffix: str, codec: str, rate: int) -> None:
    path = write_media(tmp_path / f"clip{suffix}", tone_after(ONSET, 2.0, rate), rate, codec, video_s=2.0)
    samples = decode_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert 0 <= len(samples) / 16000 - 2.0 < 0.065  # the encoder pads its last frame (1024 samples)
    # AAC priming is 1024 samples (23 ms at 44.1 kHz, 64 ms at 16 kHz): 2 ms tolerance catches it.
    assert abs(onset_s(samples) - ONSET) < 0.002
    assert np.abs(samples).max() <= 1.0


def test_range_is_cut_on_the_same_timeline(tmp_path: Path) -> None:
    path = write_media(tmp_path / "clip.mp4", tone_after(ONSET, 3.0, 44100), 44100, video_s=3.0)
    part = decode_audio(path, start_s=0.3, end_s=0.8)
    assert len(part) == 8000
    assert abs(0.3 + onset_s(part) - ONSET) < 0.002
    late = decode_audio(path, start_s=2.0, end_s=2.5)  # after a seek
    assert len(late) == 8000 and np.abs(late).max() > 0.4


def test_range_past_the_end_returns_what_exists(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", tone_after(0.0, 1.0, 16000))
    assert len(decode_audio(path, start_s=0.5, end_s=5.0)) == 8000
    with pytest.raises(MediaError, match="a.wav"):
        decode_audio(path, start_s=3.0, end_s=4.0)


def test_wav_round_trip_and_resampling(tmp_path: Path) -> None:
    samples = tone_after(0.25, 1.0, 8000)
    path = write_wav(tmp_path / "a.wav", samples, rate=8000)
    out = decode_audio(path)
    assert len(out) == 16000
    assert abs(onset_s(out) - 0.25) < 0.002
    assert len(decode_audio(path, sample_rate=8000)) == 8000


@pytest.mark.parametrize(("suffix", "codec", "rate"), [(".wav", "pcm_s16le", 16000), (".webm", "libopus", 48000)])
def test_stereo_is_the_mean_of_its_channels_not_a_clipped_sum(tmp_path: Path, suffix: str, codec: str,
                                                             rate: int) -> None:
    loud = tone_after(0.0, 1.0, rate) * 1.8  # peaks at 0.9, like a loudness-normalised download
    mono = decode_audio(write_media(tmp_path / f"mono{suffix}", loud, rate, codec))
    stereo = decode_audio(write_media(tmp_path / f"stereo{suffix}", loud, rate, codec, channels=2))
    assert np.abs(stereo).max() == pytest.approx(0.9, abs=0.05)  # summed at 0.707 each: 1.27, clipped to 1.0
    assert not np.any(np.abs(stereo) >= 1.0)
    if codec == "pcm_s16le":
        np.testing.assert_allclose(stereo, mono, atol=1e-6)


def test_a_stream_whose_layout_and_rate_change_midway_decodes_whole(tmp_path: Path) -> None:
    # HLS segments joined as yt-dlp's own HLS download joins them: mono 44.1 kHz, then stereo 48 kHz.
    first = write_media(tmp_path / "a.ts", tone_after(0.0, 1.0, 44100), 44100, video_s=1.0)
    second = write_media(tmp_path / "b.ts", tone_after(0.0, 1.0, 48000), 48000, video_s=1.0, channels=2)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    samples = decode_audio(joined)
    assert 2.0 <= len(samples) / 16000 < 2.15  # each segment's encoder pads its last frame
    assert 0.45 < np.abs(samples[20000:]).max() <= 0.55  # the stereo half too, at the tone's own level


def test_samples_after_lost_packets_stay_at_their_times(tmp_path: Path) -> None:
    """A click written at 1.0 s, after 0.5 s of lost packets, used to decode at 0.5 s (samples were counted
    from the first frame, not placed by their timestamps)."""
    import av

    rate, step = 48000, 960
    signal = np.zeros(2 * rate, np.float32)
    signal[rate:rate + step] = 0.9
    path = tmp_path / "gap.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libopus", rate=rate, layout="mono")
        for i in range(0, len(signal), step):
            if 0.3 * rate <= i < 0.8 * rate:
                continue  # lost
            frame = av.AudioFrame.from_ndarray(signal[None, i:i + step].copy(), format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, i, Fraction(1, rate)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    samples = decode_audio(path)
    assert len(samples) / 16000 == pytest.approx(2.0, abs=0.01)
    assert np.argmax(np.abs(samples) > 0.5) / 16000 == pytest.approx(1.0, abs=0.005)
    assert np.abs(samples[int(0.35 * 16000):int(0.75 * 16000)]).max() < 0.01  # the gap is silence
    late = decode_audio(path, start_s=0.9, end_s=1.2)
    assert np.argmax(np.abs(late) > 0.5) / 16000 == pytest.approx(0.1, abs=0.005)


def test_probe_media(tmp_path: Path) -> None:
    info = probe_media(write_media(tmp_path / "v.mp4", tone_after(0.1, 1.0, 16000), 16000, video_s=1.0))
    assert (info.has_audio, info.has_video, info.fps, info.width, info.height) == (True, True, 25.0, 64, 64)
    assert abs(info.duration_s - 1.0) < 0.1


def test_probe_reads_the_duration_of_a_live_recording_from_its_packets(tmp_path: Path) -> None:
    # Matroska written live (a stream recorded to a pipe, a recorder that never finished the file): no duration.
    path = write_media(tmp_path / "live.mkv", tone_after(0.1, 2.0, 48000), 48000, "libopus", video_s=2.0,
                       options={"live": "1"})
    info = probe_media(path)
    assert abs(info.duration_s - 2.0) < 0.05  # before: 0.0, and the clips row ended where it started
    assert len(decode_audio(path, end_s=info.duration_s)) / 16000 == pytest.approx(info.duration_s, abs=0.01)


def test_no_audio_stream_names_the_file(tmp_path: Path) -> None:
    path = write_media(tmp_path / "silent_video.mp4", None, video_s=1.0)
    assert probe_media(path).has_audio is False
    with pytest.raises(MediaError, match="silent_video.mp4: no audio stream"):
        decode_audio(path)


@pytest.mark.parametrize("keep", [0, 100, 0.5])
def test_corrupt_or_truncated_media_names_the_file(tmp_path: Path, keep: float) -> None:
    good = write_media(tmp_path / "good.mp4", tone_after(0.1, 1.0, 44100), 44100, video_s=1.0).read_bytes()
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(good[: int(len(good) * keep)] if isinstance(keep, float) else good[:keep])
    with pytest.raises(MediaError, match="broken.mp4"):
        decode_audio(bad)


def test_garbage_and_missing_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(MediaError, match="junk.mkv"):
        decode_audio(junk)
    with pytest.raises(MediaError, match="nothing.wav: no such media file"):
        decode_audio(tmp_path / "nothing.wav")


def test_bad_range_is_a_value_error(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", tone_after(0.0, 1.0, 16000))
    with pytest.raises(ValueError, match="bad audio range"):
        decode_audio(path, start_s=0.5, end_s=0.5)


@pytest.mark.skipif(not MEDIA.is_dir(), reason="../shared/media is absent")
def test_shared_real_clip_decodes_in_sync() -> None:
    path = MEDIA / "WDA_AlexandriaOcasioCortez_000.mp4"
    info = probe_media(path)
    samples = decode_audio(path)
    assert abs(len(samples) / 16000 - info.duration_s) < 0.1
    assert 0.01 < float(np.sqrt(np.mean(samples**2))) < 0.5  # real speech, not silence
    part = decode_audio(path, start_s=2.0, end_s=3.0)
    np.testing.assert_allclose(part, samples[32000:48000], atol=0.02)
