"""The aligner interface: records every backend returns, and its one error type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

Seconds = float


class AlignmentError(RuntimeError):
    """An utterance that could not be aligned; the message names what failed."""


@dataclass(frozen=True)
class Utterance:
    """One stretch of a clip's audio and the words spoken in it (usually a subtitle cue)."""

    cue: int  # cue index within the clip
    start_s: Seconds  # relative to the clip start
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

    def with_offset(self, offset_s: Seconds) -> AlignedPhone:
        """A copy shifted by ``offset_s`` seconds."""
        return replace(self, start_s=self.start_s + offset_s, end_s=self.end_s + offset_s)


class Aligner(Protocol):
    """A forced aligner: clip audio plus utterances in, phones with times out.

    ``align`` raises :class:`AlignmentError` naming the utterance that failed;
    nothing of a failed clip is returned, so a stage either writes every cue of
    the clip or rejects it.
    """

    name: str
    version: str

    def align(self, clip_id: str, audio: np.ndarray, sample_rate: int,
              utterances: Sequence[Utterance]) -> list[AlignedPhone]: ...
