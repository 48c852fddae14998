"""Pauses in speech, and caption words shared out among the stretches of speech between them.

A long cue (a 25 s monologue captioned as one block) is too long for
pocketsphinx to align in one piece, and cutting it by where a prefix-grammar
search finds words goes astray where the speaker pauses, hesitates and
coughs. Pauses themselves are easy to hear: a frame-energy detector with the
noise floor estimated from the segment finds them without any model. The
words are then shared out among the speech stretches between pauses by
dynamic programming on duration (each word's phones take about the same time
in one speaker's mouth), and each stretch is aligned with its own words, so a
stretch whose share is wrong costs only those words.

Pure functions over numbers; no decoder here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Seconds = float


@dataclass(frozen=True)
class Stretch:
    """A stretch of audio: speech between pauses, or a pause."""

    start_s: Seconds
    end_s: Seconds

    @property
    def duration_s(self) -> Seconds:
        return self.end_s - self.start_s


def frame_levels(audio: np.ndarray, sample_rate: int, frame_s: Seconds = 0.01,
                 band_hz: tuple[float, float] = (300.0, 4000.0)) -> np.ndarray:
    """Level of each ``frame_s`` step in dB, counting only the power in ``band_hz``.

    Speech carries its energy between 300 Hz and 4 kHz; the hum, handling
    noise and breath bumps of home recordings lie below it and are often louder
    than a hoarse voice, so a broadband level would hide the pauses (MFA's
    ``cold_corpus``). Frames are 25 ms Hann windows every ``frame_s``.

    Returns:
        (F,) float64, F = len(audio) // step; a floor of -120 dB stands for digital silence.
    """
    step, width = round(frame_s * sample_rate), round(0.025 * sample_rate)
    n = len(audio) // step
    padded = np.pad(np.asarray(audio, np.float64), (0, n * step + width - len(audio)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, width)[: n * step: step] * np.hanning(width)  # (F, W)
    freqs = np.fft.rfftfreq(width, 1 / sample_rate)
    in_band = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    power = np.sum(np.abs(np.fft.rfft(frames, axis=1)[:, in_band]) ** 2, axis=1) / width  # (F,)
    return 10 * np.log10(np.maximum(power, 1e-12))


def find_pauses(audio: np.ndarray, sample_rate: int, min_pause_s: Seconds = 0.3, margin_db: float = 6.0,
                rise: float = 0.3, smooth_s: Seconds = 0.05, frame_s: Seconds = 0.01) -> list[Stretch]:
    """Stretches of at least ``min_pause_s`` whose level stays near the segment's noise floor.

    The floor is the 10th percentile of the frame levels, the speech level the
    90th: recordings differ by tens of dB in both, so fixed thresholds fail.
    A frame is quiet below ``floor + max(margin_db, rise * (speech - floor))``.
    Levels are median-smoothed over ``smooth_s`` first, so a click does not
    split a pause and a stop closure (a few frames of silence) does not make one.
    Pauses at either edge of the audio are included.
    """
    levels = frame_levels(audio, sample_rate, frame_s)
    if len(levels) == 0:
        return []
    width = max(1, round(smooth_s / frame_s)) | 1  # odd
    padded = np.pad(levels, width // 2, mode="edge")
    smooth = np.median(np.lib.stride_tricks.sliding_window_view(padded, width), axis=1)  # (F,)
    floor, speech = np.percentile(smooth, [10, 90])
    quiet = smooth < floor + max(margin_db, rise * (speech - floor))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    pauses = []
    for start, end in zip(edges[::2], edges[1::2]):
        if (end - start) * frame_s >= min_pause_s:
            pauses.append(Stretch(start * frame_s, end * frame_s))
    return pauses


def cut_at_pauses(pauses: Sequence[Stretch], duration_s: Seconds, min_piece_s: Seconds) -> list[Stretch]:
    """The recording cut in the middle of pauses into pieces of at least ``min_piece_s`` (the last may be shorter).

    Cutting mid-pause leaves silence at both edges of every piece, so no word
    is cut and the aligner's silence model has room; pieces shorter than
    ``min_piece_s`` would hold a word or two whose share is easy to get wrong,
    so a cut is made only once the piece since the last cut is long enough.
    """
    pieces, start = [], 0.0
    for pause in pauses:
        cut = (pause.start_s + pause.end_s) / 2
        if cut - start >= min_piece_s and duration_s - cut >= min_piece_s / 2:
            pieces.append(Stretch(start, cut))
            start = cut
    pieces.append(Stretch(start, duration_s))
    return pieces


def speech_in(piece: Stretch, pauses: Sequence[Stretch]) -> Seconds:
    """Seconds of ``piece`` outside ``pauses``."""
    quiet = sum(max(0.0, min(p.end_s, piece.end_s) - max(p.start_s, piece.start_s)) for p in pauses)
    return piece.duration_s - quiet


def share_words(word_phones: Sequence[int], speech_s: Sequence[Seconds]) -> list[tuple[int, int]]:
    """Contiguous runs of words, one per piece, whose spoken length best fits each piece's speech time.

    The speaking rate is the segment's own (speech time over phones). A run of
    words with ``P`` phones in a piece with ``D`` seconds of speech costs
    ``log((D + c) / (rate * P + c))**2`` with ``c`` = 0.2 s: ratios, so long
    and short pieces weigh alike, softened for short ones whose length says
    little. A run may be empty (a cough, a filler the caption leaves out). The
    result is an estimate (speakers slow down and speed up); the aligner checks
    each share against the audio.

    Args:
        word_phones: phones of each word, in order.
        speech_s: seconds of speech in each piece, in order.

    Returns:
        ``(first, end)`` word indices for each piece (``end`` exclusive; equal when empty).
    """
    n, m = len(word_phones), len(speech_s)
    if m == 0:
        return []
    cum = np.concatenate([[0], np.cumsum(word_phones)])  # (n + 1,)
    rate = sum(speech_s) / max(int(cum[-1]), 1)
    c = 0.2
    cost = np.full((m + 1, n + 1), math.inf)  # cost[s, w]: the first s pieces hold the first w words
    back = np.zeros((m + 1, n + 1), np.int64)
    cost[0, 0] = 0.0
    for s, seconds in enumerate(speech_s, start=1):
        for w in range(n + 1):
            expected = rate * (cum[w] - cum[: w + 1]) + c  # (w + 1,): runs from each first word to w
            total = cost[s - 1, : w + 1] + np.log((seconds + c) / expected) ** 2
            back[s, w] = int(np.argmin(total))
            cost[s, w] = total[back[s, w]]
    runs, w = [], n
    for s in range(m, 0, -1):
        runs.append((int(back[s, w]), w))
        w = int(back[s, w])
    return runs[::-1]
