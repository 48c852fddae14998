"""The per-frame 12x35 MFCC windows: shape, alignment in time, clip edges."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.mfcc import N_COEFFS, N_STEPS, _log_mel, mfcc_per_frame

SR = 16000


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise shaped by a moving resonance: every MFCC frame differs from its neighbours."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    carrier = np.sin(2 * np.pi * (300 + 200 * np.sin(2 * np.pi * 1.3 * t)) * t)
    return (0.3 * carrier + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def _direct_window(samples: np.ndarray, centre_s: float) -> np.ndarray:
    """One frame's window computed on its own 360 ms slice of zero-padded audio."""
    import librosa

    start = round((centre_s - 0.18) * SR)
    segment = np.zeros(round(0.36 * SR), np.float32)
    lo, hi = max(start, 0), min(start + segment.size, samples.size)
    if hi > lo:
        segment[lo - start : hi - start] = samples[lo:hi]
    return librosa.feature.mfcc(S=_log_mel(segment, SR, 320, 160), n_mfcc=13, norm="ortho")[1:]


def test_shape_and_dtype():
    out = mfcc_per_frame(_speechlike(2.0), n_frames=50)
    assert out.shape == (50, N_COEFFS, N_STEPS) == (50, 12, 35)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()


@pytest.mark.parametrize("frame", [0, 1, 24, 49])
def test_window_matches_a_direct_computation_centred_on_the_frame(frame):
    samples = _speechlike(2.0, seed=frame)
    out = mfcc_per_frame(samples, n_frames=50)
    expected = _direct_window(samples, (frame + 0.5) / 25.0)
    np.testing.assert_allclose(out[frame], expected, atol=1e-3, rtol=1e-4)


def test_click_lands_in_the_middle_column_of_its_frame():
    samples = np.zeros(SR * 2, np.float32)
    frame = 20
    centre = round((frame + 0.5) / 25.0 * SR)
    samples[centre - 80 : centre + 80] = np.random.default_rng(1).standard_normal(160)
    out = mfcc_per_frame(samples, n_frames=50)
    energy = np.abs(out[frame]).sum(axis=0)  # per time step
    assert np.argmax(energy) == N_STEPS // 2
    # The neighbouring video frame (40 ms later) sees it 4 steps earlier.
    assert np.argmax(np.abs(out[frame + 1]).sum(axis=0)) == N_STEPS // 2 - 4


def test_silence_and_beyond_the_clip_read_zero():
    out = mfcc_per_frame(np.zeros(SR, np.float32), n_frames=25)
    np.testing.assert_allclose(out, 0.0, atol=1e-4)
    loud = mfcc_per_frame(_speechlike(1.0), n_frames=25)
    # Frame 0 centre is 20 ms in: its first 15 steps lie (at least half) before time 0.
    assert np.abs(loud[0][:, :14]).max() < 1e-3
    assert np.abs(loud[0][:, 17:]).max() > 1.0


def test_other_frame_rate_and_short_audio():
    out = mfcc_per_frame(_speechlike(0.5), n_frames=30, fps=30.0)
    assert out.shape == (30, 12, 35)
    # Audio ends at 0.5 s; frames after ~0.7 s see only silence.
    np.testing.assert_allclose(out[-1], 0.0, atol=1e-4)


def test_no_frames():
    assert mfcc_per_frame(_speechlike(0.1), n_frames=0).shape == (0, 12, 35)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"samples": np.zeros((2, 100)), "n_frames": 3}, "mono"),
        ({"samples": np.zeros(100), "n_frames": -1}, "n_frames"),
        ({"samples": np.zeros(100), "n_frames": 3, "fps": 0.0}, "fps"),
        ({"samples": np.zeros(100), "n_frames": 3, "sample_rate": 22050}, "multiple of 100"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mfcc_per_frame(**kwargs)
