"""The aligner interface: records every backend returns, and its one error type.

Captions are approximate, so an aligner never fails a clip for one cue: it
returns a :class:`ClipAlignment` holding the phones of the cues it could align
and one :class:`CueOutcome` per cue saying what happened to it (aligned,
partial, mismatch, failed), which recovery rungs it tried and how well the
audio matched the caption. :class:`AlignmentError` is left for what concerns
the whole clip (audio at the wrong sample rate, an utterance outside the audio).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

Seconds = float

CUE_STATUSES: tuple[str, ...] = ("aligned", "partial", "mismatch", "failed")
"""``aligned``: every caption word placed; ``partial``: some words skipped (the
rest kept); ``mismatch``: the audio does not match the caption (excluded);
``failed``: nothing could be placed (excluded)."""

KEPT_STATUSES: tuple[str, ...] = ("aligned", "partial")
"""The statuses whose phones count, in histograms and everything downstream."""


def cue_label(cue: int, start_s: Seconds, end_s: Seconds) -> str:
    """``cue 2 (4.00-8.00 s)``: how every message names a cue, with its caption times."""
    return f"cue {cue} ({start_s:.2f}-{end_s:.2f} s)"


class AlignmentError(RuntimeError):
    """A clip that could not be aligned at all; the message names the clip and why."""


@dataclass(frozen=True)
class Utterance:
    """One stretch of a clip's audio and the words spoken in it (usually a subtitle cue)."""

    cue: int  # cue index within the clip
    start_s: Seconds  # relative to the clip start; a hint, the aligner may look around it
    end_s: Seconds
    words: tuple[str, ...]  # normalised, speakable words (lower case, letters and ')


@dataclass(frozen=True)
class AlignedPhone:
    """One aligned phone in the backend's own label set, times relative to the clip start."""

    cue: int
    word: str
    phone: str  # raw label: "AH0", "SIL", "spn" ... ; mapped to 39 classes by pipeline.phonemes
    start_s: Seconds
    end_s: Seconds
    score: float | None = None  # acoustic score per frame (backend units, higher is better)

    def with_offset(self, offset_s: Seconds) -> AlignedPhone:
        """A copy shifted by ``offset_s`` seconds."""
        return replace(self, start_s=self.start_s + offset_s, end_s=self.end_s + offset_s)


@dataclass(frozen=True)
class CueOutcome:
    """What alignment made of one cue; a ``cue_outcomes`` row once it has a clip id."""

    cue: int
    status: str  # one of CUE_STATUSES
    reason: str  # "" when aligned; else short and stable: no_match, low_score, words_skipped, ...
    detail: str  # for a person: what happened, with the cue's times
    caption_words: int
    aligned_words: int
    score: float | None  # mean acoustic score per frame of the cue's words (None: not aligned)
    window_start_s: Seconds  # the audio finally searched
    window_end_s: Seconds
    rungs: tuple[str, ...] = ()  # recovery rungs tried, in order (see pipeline.align.sphinx)

    @property
    def kept(self) -> bool:
        """Whether the cue's phones count (in histograms and everything downstream)."""
        return self.status in KEPT_STATUSES

    def to_row(self, clip_id: str) -> dict[str, object]:
        return {"clip_id": clip_id, "cue": self.cue, "status": self.status, "reason": self.reason,
                "detail": self.detail, "caption_words": self.caption_words,
                "aligned_words": self.aligned_words,
                "score": None if self.score is None else round(self.score, 3),
                "window_start_s": round(self.window_start_s, 3), "window_end_s": round(self.window_end_s, 3),
                "rungs": list(self.rungs)}


@dataclass
class ClipAlignment:
    """Phones of a clip's kept cues and the outcome of every cue."""

    phones: list[AlignedPhone] = field(default_factory=list)
    outcomes: list[CueOutcome] = field(default_factory=list)

    @property
    def caption_words(self) -> int:
        return sum(o.caption_words for o in self.outcomes)

    @property
    def aligned_words(self) -> int:
        """Caption words placed in kept cues."""
        return sum(o.aligned_words for o in self.outcomes if o.kept)

    @property
    def coverage(self) -> float:
        """Share of the clip's caption words that were aligned and kept (0 without words)."""
        return self.aligned_words / self.caption_words if self.caption_words else 0.0


@dataclass(frozen=True)
class ClipAudio:
    """One clip's 16 kHz audio and utterances: the unit of :func:`align_clips`."""

    clip_id: str
    audio: np.ndarray
    utterances: tuple[Utterance, ...]


class Aligner(Protocol):
    """A forced aligner: clip audio plus utterances in, phones and per-cue outcomes out.

    ``align`` returns the phones of the cues it kept and one outcome per
    utterance; it raises :class:`AlignmentError` only for a fault of the whole
    clip. A backend that pays a large cost per call (MFA starts a process and
    loads its models) also defines ``align_many(clips: Sequence[ClipAudio],
    sample_rate) -> list[ClipAlignment | AlignmentError]``, used by
    :func:`align_clips`.
    """

    name: str
    version: str

    def align(self, clip_id: str, audio: np.ndarray, sample_rate: int,
              utterances: Sequence[Utterance]) -> ClipAlignment: ...


def outside_audio(clip_id: str, utterances: Sequence[Utterance], audio_s: Seconds) -> AlignmentError | None:
    """An error naming the clip's first utterance that is empty or ends after its audio, if any."""
    for u in utterances:
        if u.end_s > audio_s + 0.01 or u.start_s >= u.end_s:
            return AlignmentError(f"clip {clip_id} {cue_label(u.cue, u.start_s, u.end_s)}: "
                                  f"outside the audio ({audio_s:.2f} s)")
    return None


def align_clips(aligner: Aligner, clips: Sequence[ClipAudio],
                sample_rate: int = 16000) -> list[ClipAlignment | AlignmentError]:
    """Align several clips: in one call where the backend can (``align_many``: MFA), else one by one.

    A clip's :class:`AlignmentError` is returned in its place, so one bad clip
    never costs the others.
    """
    many = getattr(aligner, "align_many", None)
    if many is not None:
        return many(clips, sample_rate)
    results: list[ClipAlignment | AlignmentError] = []
    for clip in clips:
        try:
            results.append(aligner.align(clip.clip_id, clip.audio, sample_rate, clip.utterances))
        except AlignmentError as exc:
            results.append(exc)
    return results
