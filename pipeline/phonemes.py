"""Phones to the 39 CMU classes, and per-clip phoneme histograms.

Aligners speak slightly different phone sets: pocketsphinx uses the 39 CMU
phones plus ``SIL`` and ``+NOISE+``-style fillers; the Montreal Forced Aligner's
ARPA models add stress digits (``AH0``) and write ``sil``, ``sp`` and ``spn``.
Everything downstream (histograms, selection) counts only the 39 classes, so
silence and noise are dropped here, in one place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from warehouse.phones import N_PHONES, PHONE_INDEX, PHONES

_STRESS = re.compile(r"[012]$")

NON_SPEECH: frozenset[str] = frozenset({"SIL", "SP", "SPN", "NSN", "", "<EPS>"})
"""Silence, short pause, spoken noise and empty labels, after upper-casing."""


def to_cmu39(phone: str) -> str | None:
    """The CMU class of an aligner phone label, or ``None`` for silence and noise.

    Raises:
        ValueError: a label that is neither a CMU phone nor a known non-speech
            label (a wrong model or a parsing bug, never silently counted).
    """
    label = _STRESS.sub("", phone.strip().upper())
    if label in PHONE_INDEX:
        return label
    if label in NON_SPEECH or label.startswith("+") or label.startswith("<"):
        return None
    raise ValueError(f"phone {phone!r} is not one of the 39 CMU classes nor silence/noise")


@dataclass(frozen=True)
class PhonemeHistogram:
    """Counts and seconds per phone of one clip; a ``phoneme_histograms`` row."""

    clip_id: str
    counts: tuple[int, ...]  # N_PHONES entries, warehouse.phones.PHONES order
    seconds: tuple[float, ...]

    @property
    def n_phones(self) -> int:
        return sum(self.counts)

    def to_row(self) -> dict[str, object]:
        return {
            "clip_id": self.clip_id,
            "counts": list(self.counts),
            "seconds": list(self.seconds),
            "n_phones": self.n_phones,
        }


def histogram(clip_id: str, phones: Iterable[tuple[str, float, float]]) -> PhonemeHistogram:
    """Histogram of ``(phone, start_s, end_s)`` triples already in the 39 classes.

    Raises:
        ValueError: a phone outside the 39 classes or a negative duration.
    """
    counts = [0] * N_PHONES
    seconds = [0.0] * N_PHONES
    for phone, start_s, end_s in phones:
        if phone not in PHONE_INDEX:
            raise ValueError(f"clip {clip_id}: phone {phone!r} is not one of {len(PHONES)} CMU classes")
        if end_s < start_s:
            raise ValueError(f"clip {clip_id}: phone {phone} ends before it starts ({start_s}, {end_s})")
        j = PHONE_INDEX[phone]
        counts[j] += 1
        seconds[j] += end_s - start_s
    return PhonemeHistogram(clip_id, tuple(counts), tuple(round(s, 6) for s in seconds))
