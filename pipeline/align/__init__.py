"""Forced alignment of subtitle cues to phones: one interface, several backends.

``make_aligner(name)`` is the only place that chooses a backend, so the heavy
import of each (pocketsphinx models, the ``mfa`` subprocess) happens only for
the one in use.
"""

from __future__ import annotations

from pipeline.align.base import AlignedPhone, Aligner, AlignmentError, ClipAlignment, CueOutcome, Utterance

ALIGNERS: tuple[str, ...] = ("pocketsphinx", "mfa")
BATCH_ALIGNERS: frozenset[str] = frozenset({"mfa"})
"""Backends that align a batch of clips in one call (``align_many``): MFA starts and loads its models once."""


def make_aligner(name: str, pad_s: float | None = None) -> Aligner:
    """The aligner called ``name`` with its default configuration.

    ``pad_s``: how far pocketsphinx searches beyond a cue's caption times
    (default :class:`pipeline.align.sphinx.SphinxConfig`'s); MFA searches each
    utterance with its own beam and ignores it.

    Raises:
        ValueError: an unknown name (the message lists the choices).
    """
    if name == "pocketsphinx":
        from pipeline.align.sphinx import SphinxAligner, SphinxConfig

        return SphinxAligner(SphinxConfig() if pad_s is None else SphinxConfig(pad_s=pad_s))
    if name == "mfa":
        from pipeline.align.mfa import MfaAligner

        return MfaAligner()
    raise ValueError(f"unknown aligner {name!r}; choose one of {', '.join(ALIGNERS)}")


__all__ = ["ALIGNERS", "BATCH_ALIGNERS", "AlignedPhone", "Aligner", "AlignmentError", "ClipAlignment", "CueOutcome",
           "Utterance", "make_aligner"]
