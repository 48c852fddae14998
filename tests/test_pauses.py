"""Pause finding and sharing caption words among the pieces between pauses (pipeline.align.pauses)."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.librivox import needs_librivox, transcripts, wav
from pipeline.align.pauses import Stretch, cut_at_pauses, find_pauses, frame_levels, share_words, speech_in
from pipeline.audio import decode_audio

SR = 16000


def bursts(spans: list[tuple[float, float]], duration_s: float, hum: float = 0.0, seed: int = 0) -> np.ndarray:
    """Band-limited noise ("speech") over ``spans``, faint white noise elsewhere, plus a 50 Hz hum of ``hum``."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(duration_s * SR)) / SR
    audio = 0.001 * rng.standard_normal(len(t))
    voice = np.sin(2 * np.pi * 500 * t) * (1 + 0.5 * np.sin(2 * np.pi * 4 * t)) + 0.5 * np.sin(2 * np.pi * 1500 * t)
    for start, end in spans:
        audio[round(start * SR): round(end * SR)] += 0.05 * voice[round(start * SR): round(end * SR)]
    return (audio + hum * np.sin(2 * np.pi * 50 * t)).astype(np.float32)


SPANS = [(0.5, 2.0), (2.6, 4.1), (4.3, 6.0), (7.0, 8.5)]  # pauses: 0-0.5, 2.0-2.6, 4.1-4.3 (short), 6.0-7.0, 8.5-9


def test_levels_count_the_speech_band_only() -> None:
    quiet, hummed = bursts(SPANS, 9.0), bursts(SPANS, 9.0, hum=0.3)
    assert frame_levels(quiet, SR).shape == (900,)
    # a hum far louder than the voice leaves the speech band's levels nearly as they were (the last
    # frames reach past the audio's end, where the cut-off hum is a click)
    assert np.max(np.abs(frame_levels(hummed, SR) - frame_levels(quiet, SR))[:-2]) < 3.0


@pytest.mark.parametrize("hum", [0.0, 0.3])
def test_pauses_are_found_where_the_voice_stops_and_short_gaps_are_not(hum: float) -> None:
    pauses = find_pauses(bursts(SPANS, 9.0, hum=hum), SR, min_pause_s=0.3)
    expected = [(0.0, 0.5), (2.0, 2.6), (6.0, 7.0), (8.5, 9.0)]  # the 0.2 s gap at 4.1 s is too short
    assert len(pauses) == len(expected)
    for pause, (start, end) in zip(pauses, expected):
        assert pause.start_s == pytest.approx(start, abs=0.04) and pause.end_s == pytest.approx(end, abs=0.04)


def test_pieces_are_cut_mid_pause_and_are_long_enough() -> None:
    pauses = [Stretch(0.0, 0.5), Stretch(1.0, 1.4), Stretch(2.0, 2.6), Stretch(6.0, 7.0), Stretch(8.5, 9.0)]
    pieces = cut_at_pauses(pauses, 9.0, min_piece_s=2.0)
    assert [(p.start_s, p.end_s) for p in pieces] == [(0.0, 2.3), (2.3, 6.5), (6.5, 9.0)]
    assert cut_at_pauses([], 9.0, 2.0) == [Stretch(0.0, 9.0)]
    assert speech_in(pieces[1], pauses) == pytest.approx(4.2 - 0.3 - 0.5)


def test_words_are_shared_by_their_phones_and_a_piece_may_hold_none() -> None:
    phones = [3, 5, 2, 4, 6, 3, 2, 5]  # 30 phones at 0.1 s each
    assert share_words(phones, [1.0, 0.4, 1.6]) == [(0, 3), (3, 4), (4, 8)]
    # a cough between two runs of speech takes no words
    assert share_words(phones, [1.0, 0.05, 2.0]) == [(0, 3), (3, 3), (3, 8)]
    assert share_words(phones, []) == []


@needs_librivox
def test_pauses_of_real_read_speech_separate_its_sentences() -> None:
    """Five LibriVox utterances back to back: pauses are found at the joins, and little speech is called a pause.

    The last join (21.44 s) falls on a 90 ms click that splits its silence into two pauses shorter than 0.3 s.
    """
    utts = sorted(transcripts())
    clips = [decode_audio(wav(u)) for u in utts]
    joins = np.cumsum([len(c) / SR for c in clips])[:-1]
    pauses = find_pauses(np.concatenate(clips), SR)
    assert [any(p.start_s < t < p.end_s for p in pauses) for t in joins] == [True, True, True, False]
    assert sum(p.duration_s for p in pauses) < 0.3 * sum(len(c) for c in clips) / SR
