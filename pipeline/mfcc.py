"""The paper's audio input: a 12x35 MFCC window per video frame.

For video frame ``i`` (centre time ``(i + 0.5) / fps``) the window holds 35
MFCC frames whose centres lie 10 ms apart, symmetric about the frame centre
(frame 17 of the 35 sits on it): 350 ms of audio, 20 ms Hann windows, 10 ms
hop, 13 coefficients with the first (energy-like c0) dropped.

The MFCC of the whole clip is computed once on a 10 ms grid and every
frame's window is a slice of it, so the cost is one STFT per clip, not one per
video frame. Audio outside the clip is digital silence (zeros); because the
log-mel floor is flat, silence gives exactly c0 only, so windows that reach
past the clip edges read ~0 there.

MFCC implementation: ``librosa`` (0.11), with these parameters:
n_fft = win_length = 20 ms (320 samples at 16 kHz), hop 10 ms, Hann window,
``center=False`` (the grid is placed explicitly), 40 Slaney mel bands from 0 Hz
to Nyquist, power spectrum, ``10 log10(max(S, 1e-10))`` without top-dB
clipping (clipping would tie each frame to the clip's loudest frame), DCT-II
with orthonormal scaling, no liftering.
"""

from __future__ import annotations

import numpy as np

N_COEFFS = 12
"""Coefficients per MFCC frame after dropping c0."""

N_STEPS = 35
"""MFCC frames per video frame: 350 ms at a 10 ms hop."""

WINDOW_S = 0.020
HOP_S = 0.010
N_MELS = 40
AMIN = 1e-10


def _log_mel(samples: np.ndarray, sample_rate: int, win: int, hop: int) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(
        y=samples, sr=sample_rate, n_fft=win, hop_length=hop, win_length=win,
        window="hann", center=False, power=2.0, n_mels=N_MELS, fmin=0.0,
        fmax=sample_rate / 2, htk=False, norm="slaney",
    )
    return librosa.power_to_db(mel, ref=1.0, amin=AMIN, top_db=None)


def mfcc_per_frame(
    samples: np.ndarray, n_frames: int, fps: float = 25.0, sample_rate: int = 16000
) -> np.ndarray:
    """The 12x35 MFCC window of every video frame of a clip.

    Args:
        samples: mono audio of the clip, sample 0 at video time 0.
        n_frames: number of video frames to produce windows for.
        fps: video frame rate.
        sample_rate: rate of ``samples`` in Hz; must be a multiple of 100 so
            the 10 ms hop is a whole number of samples.

    Returns:
        float32 array (n_frames, 12, 35): coefficients 1..12 by time step.

    Raises:
        ValueError: bad shapes, rates or frame count.
    """
    import librosa

    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"mfcc_per_frame: samples must be mono 1-D, got shape {samples.shape}")
    if n_frames < 0:
        raise ValueError(f"mfcc_per_frame: n_frames must be >= 0, got {n_frames}")
    if not fps > 0:
        raise ValueError(f"mfcc_per_frame: fps must be > 0, got {fps}")
    if sample_rate <= 0 or sample_rate % 100:
        raise ValueError(f"mfcc_per_frame: sample_rate must be a positive multiple of 100, got {sample_rate}")
    if n_frames == 0:
        return np.zeros((0, N_COEFFS, N_STEPS), np.float32)

    hop = round(sample_rate * HOP_S)
    win = round(sample_rate * WINDOW_S)
    half = N_STEPS // 2
    # Grid index g (10 ms steps from time 0) of each video frame centre.
    centres = np.round((np.arange(n_frames) + 0.5) / fps / HOP_S).astype(np.int64)
    # Padded frame j covers padded[j*hop : j*hop+win] and is centred on grid index j - half,
    # so frame i's window is padded frames centres[i] .. centres[i] + N_STEPS - 1.
    lead = half * hop + win // 2
    n_grid = int(centres[-1]) + N_STEPS
    total = (n_grid - 1) * hop + win
    padded = np.zeros(total, np.float32)
    body = samples[: max(0, total - lead)]
    padded[lead : lead + body.size] = body

    coeffs = librosa.feature.mfcc(
        S=_log_mel(padded, sample_rate, win, hop), n_mfcc=N_COEFFS + 1, dct_type=2,
        norm="ortho", lifter=0,
    )[1:]  # (12, n_grid)
    index = centres[:, None] + np.arange(N_STEPS)[None, :]  # (n_frames, 35)
    return np.ascontiguousarray(coeffs[:, index].transpose(1, 0, 2), dtype=np.float32)
