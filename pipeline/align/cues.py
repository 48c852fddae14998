"""Caption cues as alignment hints: merged where they overlap, searched in padded windows.

Caption times are approximate (auto captions are off by tenths of a second,
cues overlap and cut words), so a cue's times only say roughly where to look.
These pure functions turn a clip's utterances into :class:`Segment` records,
the units an aligner searches, and turn what it placed back into one
:class:`~pipeline.align.base.CueOutcome` per cue. They hold no backend code, so
every backend shares the same rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.align.base import AlignedPhone, CueOutcome, Seconds, Utterance, cue_label


@dataclass(frozen=True)
class Segment:
    """Words the aligner searches for together, with the caption's time hint."""

    start_s: Seconds
    end_s: Seconds
    words: tuple[str, ...]
    word_cues: tuple[int, ...]  # the cue of each word
    cue_times: tuple[tuple[int, Seconds, Seconds], ...] = ()  # each cue's own caption times, when merged

    @property
    def cues(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(self.word_cues))

    def label(self, cue: int) -> str:
        """``cue 2 (7.50-12.00 s)``: one cue of the segment with its own caption times."""
        start, end = next(((s, e) for c, s, e in self.cue_times if c == cue), (self.start_s, self.end_s))
        return cue_label(cue, start, end)

    def where(self) -> str:
        """``cue 2 (4.00-8.00 s)`` or ``cues 2-3 (...)``: how errors name the segment."""
        cues = self.cues
        if len(cues) == 1:
            return cue_label(cues[0], self.start_s, self.end_s)
        return f"cues {cues[0]}-{cues[-1]} ({self.start_s:.2f}-{self.end_s:.2f} s)"


def merge_overlapping(utterances: Sequence[Utterance], min_overlap_s: Seconds = 0.1) -> list[Segment]:
    """Cues in time order as segments; cues overlapping by more than ``min_overlap_s`` become one.

    Overlapping cues (two speakers' lines shown together, rolling captions whose
    times overlap) hold words spoken in the same stretch of audio; aligning them
    apart would make both search the same speech. Cues without words are dropped.
    """
    segments: list[Segment] = []
    for u in sorted((u for u in utterances if u.words), key=lambda u: (u.start_s, u.cue)):
        if segments and u.start_s < segments[-1].end_s - min_overlap_s:
            last = segments[-1]
            segments[-1] = Segment(last.start_s, max(last.end_s, u.end_s), last.words + u.words,
                                   last.word_cues + (u.cue,) * len(u.words),
                                   last.cue_times + ((u.cue, u.start_s, u.end_s),))
        else:
            segments.append(Segment(u.start_s, u.end_s, u.words, (u.cue,) * len(u.words),
                                    ((u.cue, u.start_s, u.end_s),)))
    return segments


def search_window(segment: Segment, pad_s: Seconds, floor_s: Seconds, audio_s: Seconds) -> tuple[Seconds, Seconds]:
    """The audio to search for ``segment``: its caption times widened by ``pad_s`` on both sides.

    The window never starts before ``floor_s`` (where the previous segment's
    last aligned word ends: speech another cue has aligned is not taken again;
    a floor between frames is rounded up) and never leaves the audio. Its edges
    lie on the 10 ms frame grid: the
    pocketsphinx phone pass fails on some windows cut between frames that align
    when cut on the grid.
    """
    start = max(_on_grid(math.floor, segment.start_s - pad_s), _on_grid(math.ceil, floor_s), 0.0)
    end = min(_on_grid(math.ceil, segment.end_s + pad_s), audio_s)
    return start, max(end, min(start + 0.05, audio_s))


def _on_grid(rounding: Callable[[float], int], seconds: Seconds) -> Seconds:
    """``seconds`` rounded to the 10 ms frame grid by ``rounding`` (``math.floor`` or ``math.ceil``).

    Rounded to 1e-6 first: 9.79 * 100 is 978.99..., whose floor would be a frame early.
    """
    return rounding(round(seconds * 100, 6)) / 100


def next_floor(segment: Segment, last_word_end_s: Seconds, tolerance_s: Seconds) -> Seconds:
    """Where the search for the next segment may start, after ``segment`` was aligned.

    After the end of its last aligned word, but not more than ``tolerance_s``
    after its caption end: a last word stretched over the next cue's speech
    (continuous speech, contiguous cues) must not hide that speech from the
    next cue.
    """
    return min(last_word_end_s, segment.end_s + tolerance_s)


@dataclass(frozen=True)
class SegmentResult:
    """What the aligner made of one segment: placed words (by index) and the rungs it tried."""

    phones: list[tuple[int, AlignedPhone]]  # (word index in the segment, phone); -1 for silence/fillers
    word_scores: dict[int, tuple[float, int]]  # word index -> (summed score, frames)
    window: tuple[Seconds, Seconds]
    rungs: tuple[str, ...]
    reason: str = ""  # why nothing (or not everything) was kept
    detail: str = ""


def cue_outcomes(segment: Segment, result: SegmentResult, min_score: float,
                 min_share: float = 0.5) -> list[CueOutcome]:
    """One outcome per cue of ``segment``, judged by words placed and their acoustic score.

    A cue is a ``mismatch`` when its placed words score below ``min_score`` per
    frame on average, or when fewer than ``min_share`` of its words could be
    placed (a few short words of a wrong caption always fit somewhere): its audio
    holds something else than its caption (other words, music, another
    language) and its phones must not be counted.
    """
    outcomes = []
    for cue in segment.cues:
        indices = [i for i, c in enumerate(segment.word_cues) if c == cue]
        placed = [i for i in indices if i in result.word_scores]
        frames = sum(result.word_scores[i][1] for i in placed)
        score = sum(result.word_scores[i][0] for i in placed) / frames if frames else None
        where = segment.label(cue)
        if not placed:
            status, reason = "failed", result.reason or "not_found"
            detail = result.detail or f"none of the caption's {len(indices)} words were found in the audio"
        elif score is not None and score < min_score:
            status, reason = "mismatch", "low_score"
            detail = (f"audio and caption do not match: acoustic score {score:.1f} per frame, "
                      f"below {min_score:.1f}")
        elif len(placed) < min_share * len(indices):
            status, reason = "mismatch", "few_words"
            detail = (f"audio and caption do not match: only {len(placed)} of {len(indices)} caption words "
                      "found in the audio")
        elif len(placed) < len(indices):
            status, reason = "partial", "words_skipped"
            skipped = [segment.words[i] for i in indices if i not in result.word_scores]
            detail = (f"{len(skipped)} caption word(s) not found in the audio or not matching it: "
                      f"{' '.join(skipped[:8])}")
        else:
            status, reason, detail = "aligned", "", ""
        outcomes.append(CueOutcome(cue, status, reason, f"{where}: {detail}" if detail else "",
                                   len(indices), len(placed), score, *result.window, result.rungs))
    return outcomes


def kept_phones(segment: Segment, result: SegmentResult, outcomes: Sequence[CueOutcome]) -> list[AlignedPhone]:
    """Phones of the placed words of kept cues, tagged with their own cue (silence and fillers dropped)."""
    kept = {o.cue for o in outcomes if o.kept}
    return [AlignedPhone(segment.word_cues[i], p.word, p.phone, p.start_s, p.end_s, p.score)
            for i, p in result.phones if i >= 0 and segment.word_cues[i] in kept]
