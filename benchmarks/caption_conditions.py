"""Realistic caption conditions made from reference word timings, for alignment-yield benchmarks.

Production captions are never exact: human captions are grouped into cues of
a few seconds whose times drift by tenths of a second, YouTube's automatic
captions roll (each cue repeats the previous line, with overlapping times),
some captioners cut fixed windows through words, and recognisers substitute,
drop and insert words. Each condition here is a pure function of a clip's
reference words with their times, the clip's length and a seeded
:class:`random.Random`, returning the cues a captioner would have written
(raw text, as in a subtitle file), so a benchmark or a test can feed the
same realistic captions to the aligner and compare what survives.

``asr`` is the one condition whose input is not the reference but what a
recogniser heard (see :data:`FROM_RECOGNITION`): the caller recognises the
clip's audio and passes those words.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import NamedTuple

Seconds = float


class WordTime(NamedTuple):
    """A spoken word and where it lies in the clip."""

    word: str
    start_s: Seconds
    end_s: Seconds


class CaptionCue(NamedTuple):
    """One cue as a captioner writes it; ``text`` may hold a newline (two-line rolling cues)."""

    start_s: Seconds
    end_s: Seconds
    text: str


Condition = Callable[[Sequence[WordTime], Seconds, random.Random], list[CaptionCue]]
"""(reference words, clip length, rng) -> caption cues in display order."""

CUE_MIN_S, CUE_MAX_S = 2.5, 4.0  # human caption cues: a line or two, read in 2.5-4 s
BREAK_PAUSE_S = 0.15  # captioners end a long-enough cue at a pause
ROLLING_LINE_S = (1.5, 3.0)  # one line of YouTube's rolling auto captions
FIXED_WINDOW_S = 4.0
ASR_CUE_S = 4.0
MIN_CUE_S = 0.1  # a jittered cue is never shorter than this

# Common English words, the usual substitutions and insertions of a recogniser
# (short function words dominate its errors).
COMMON_WORDS: tuple[str, ...] = (
    "the", "a", "and", "to", "of", "in", "it", "is", "that", "you", "i", "he", "was", "for", "on", "are",
    "with", "as", "his", "they", "at", "be", "this", "have", "from", "or", "one", "had", "by", "but",
    "not", "what", "all", "were", "we", "when", "your", "can", "said", "there", "an", "which", "she", "do",
    "if", "will", "up", "about", "out", "them", "then", "so", "some", "her", "would", "like", "him", "into",
    "has", "more", "no", "could", "my", "than", "been", "who", "now", "just", "know", "well", "right", "yeah",
)
ERROR_MIX: tuple[tuple[str, float], ...] = (("substitute", 0.6), ("delete", 0.25), ("insert", 0.15))
"""Share of each error kind among recogniser word errors (substitutions dominate)."""


# --- grouping ----------------------------------------------------------------

def group_words(words: Sequence[WordTime], min_s: Seconds = CUE_MIN_S,
                max_s: Seconds = CUE_MAX_S) -> list[list[WordTime]]:
    """Words in cue-sized groups, cut at word boundaries: never longer than ``max_s``
    (unless one word is), ended at the first pause once ``min_s`` long. Deterministic,
    so every condition built on it shares the same cues."""
    groups: list[list[WordTime]] = []
    current: list[WordTime] = []
    for k, word in enumerate(words):
        if current and word.end_s - current[0].start_s > max_s:
            groups.append(current)
            current = []
        current.append(word)
        following = words[k + 1] if k + 1 < len(words) else None
        long_enough = word.end_s - current[0].start_s >= min_s
        if following is not None and long_enough and following.start_s - word.end_s >= BREAK_PAUSE_S:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _cue(group: Sequence[WordTime]) -> CaptionCue:
    return CaptionCue(group[0].start_s, group[-1].end_s, " ".join(w.word for w in group))


# --- conditions ----------------------------------------------------------------

def exact(words: Sequence[WordTime], duration_s: Seconds, rng: random.Random) -> list[CaptionCue]:
    """Careful human captions: 2.5-4 s cues at word boundaries, times exactly the words' bounds."""
    return [_cue(g) for g in group_words(words)]


def jittered(max_shift_s: Seconds) -> Condition:
    """Exact cues with every boundary moved uniformly by up to ``max_shift_s``, clamped to the clip.

    Neighbouring cues may overlap or leave gaps, as hand-timed and re-timed
    captions do.
    """
    def jitter(words: Sequence[WordTime], duration_s: Seconds, rng: random.Random) -> list[CaptionCue]:
        out = []
        for cue in exact(words, duration_s, rng):
            start = min(max(cue.start_s + rng.uniform(-max_shift_s, max_shift_s), 0.0), duration_s - MIN_CUE_S)
            end = min(max(cue.end_s + rng.uniform(-max_shift_s, max_shift_s), start + MIN_CUE_S), duration_s)
            out.append(CaptionCue(start, end, cue.text))
        return out
    jitter.__doc__ = f"Exact cues, each boundary moved by up to {max_shift_s * 1000:.0f} ms."
    return jitter


def rolling(words: Sequence[WordTime], duration_s: Seconds, rng: random.Random) -> list[CaptionCue]:
    """YouTube's rolling automatic captions, as its SRT/VTT downloads hold them.

    Words come in lines of 1.5-3 s. Cue ``k`` shows line ``k-1`` above line
    ``k``; it appears when line ``k`` starts and stays until line ``k+1`` has
    been spoken (so it overlaps the next cue by a whole line), and a 10 ms
    transition cue holding line ``k`` alone follows each cue. The pipeline's
    ``prepare_cues`` must detect this, drop the transitions and keep only the
    words each cue adds.
    """
    lines = group_words(words, *ROLLING_LINE_S)
    cues = []
    for k, line in enumerate(lines):
        text = " ".join(w.word for w in line)
        above = " ".join(w.word for w in lines[k - 1]) + "\n" if k else ""
        end = lines[k + 1][-1].end_s if k + 1 < len(lines) else line[-1].end_s
        cues.append(CaptionCue(line[0].start_s, min(end, duration_s), above + text))
        if k + 1 < len(lines):
            switch = lines[k + 1][0].start_s
            cues.append(CaptionCue(max(switch - 0.01, 0.0), switch, text))
    return cues


def fixed_windows(words: Sequence[WordTime], duration_s: Seconds, rng: random.Random) -> list[CaptionCue]:
    """Fixed 4 s windows holding the words that start in them: windows cut words at their edges."""
    cues = []
    for k in range(int(duration_s // FIXED_WINDOW_S) + 1):
        lo, hi = k * FIXED_WINDOW_S, min((k + 1) * FIXED_WINDOW_S, duration_s)
        inside = [w.word for w in words if lo <= w.start_s < hi]
        if inside and hi > lo:
            cues.append(CaptionCue(lo, hi, " ".join(inside)))
    return cues


def with_errors(words: Sequence[WordTime], rate: float, rng: random.Random) -> list[WordTime]:
    """``words`` with a share ``rate`` of them substituted, deleted or followed by an insertion
    (mix :data:`ERROR_MIX`), using :data:`COMMON_WORDS` as a recogniser would."""
    kinds, weights = zip(*ERROR_MIX)
    out: list[WordTime] = []
    for word in words:
        if rng.random() >= rate:
            out.append(word)
            continue
        kind = rng.choices(kinds, weights)[0]
        if kind == "substitute":
            out.append(word._replace(word=rng.choice([w for w in COMMON_WORDS if w != word.word])))
        elif kind == "insert":
            out += [word, WordTime(rng.choice(COMMON_WORDS), word.end_s, word.end_s)]
    return out


def errorful(rate: float) -> Condition:
    """Exact cues (same times) whose words carry recogniser-like errors at ``rate``."""
    def errors(words: Sequence[WordTime], duration_s: Seconds, rng: random.Random) -> list[CaptionCue]:
        out = []
        for group in group_words(words):
            noisy = with_errors(group, rate, rng)
            text = " ".join(w.word for w in noisy)
            if text:  # every word of a short cue may be deleted
                out.append(CaptionCue(group[0].start_s, group[-1].end_s, text))
        return out
    errors.__doc__ = f"Exact cues with {rate:.0%} of the words substituted, deleted or inserted."
    return errors


def asr(recognised: Sequence[WordTime], duration_s: Seconds, rng: random.Random) -> list[CaptionCue]:
    """Automatic captions: a recogniser's words (not the reference) in cues of up to 4 s at word boundaries."""
    return [_cue(g) for g in group_words(recognised, ASR_CUE_S, ASR_CUE_S)]


CONDITIONS: dict[str, Condition] = {
    "exact": exact,
    "jitter100": jittered(0.1),
    "jitter300": jittered(0.3),
    "jitter500": jittered(0.5),
    "rolling": rolling,
    "fixed4s": fixed_windows,
    "errors10": errorful(0.1),
    "errors20": errorful(0.2),
    "asr": asr,
}
FROM_RECOGNITION: frozenset[str] = frozenset({"asr"})
"""Conditions whose words are the clip's recognised words, not its reference words."""


def condition(name: str) -> Condition:
    """The condition called ``name``.

    Raises:
        ValueError: unknown name (the message lists the choices).
    """
    try:
        return CONDITIONS[name]
    except KeyError:
        raise ValueError(f"unknown caption condition {name!r}; choose from {', '.join(CONDITIONS)}") from None
