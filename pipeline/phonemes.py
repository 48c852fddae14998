"""Phones to the 39 CMU classes, and per-clip phoneme histograms.

Aligners speak slightly different phone sets: pocketsphinx uses the 39 CMU
phones plus ``SIL`` and ``+NOISE+``-style fillers; the Montreal Forced Aligner's
ARPA models (``english_us_arpa``) add stress digits (``AH0``) and write ``sil``,
``sp`` and ``spn``; its IPA model (``english_mfa``) writes IPA phones (``ɑ``,
``tʲ``, ``aj``, ...), mapped by :data:`MFA_IPA_TO_CMU`. Everything downstream
(histograms, selection) counts only the 39 classes, so silence and noise are
dropped here, in one place.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from warehouse.phones import N_PHONES, PHONE_INDEX, PHONES

_STRESS = re.compile(r"[012]$")

NON_SPEECH: frozenset[str] = frozenset({"SIL", "SP", "SPN", "NSN", "", "<EPS>"})
"""Silence, short pause, spoken noise and empty labels, after upper-casing."""

# The english_mfa phone inventory (every dialect: US, UK, Australian, Indian,
# Nigerian, ...) as listed in MFA 3.4.3's english_mfa phone groups, mapped to
# one CMU class each. Where MFA's own english_mfa -> ARPA remapping file
# (``english_arpa_remapping.yaml``) has an entry we agree with it, stress
# removed (so ``ɒ`` is ``AO``: CMU "forced" is F AO R S T). Deviations and
# phones that file leaves out:
#   - syllabic ``m̩ n̩ ɫ̩`` map to their consonant (MFA: ``AH0 M`` etc., and its
#     alignment remapper keeps only the first, ``AH``): one interval gets one
#     class, and the lips make the consonant;
#   - flaps ``ɾ ɾʲ`` and the glottal stop ``ʔ`` are ``T`` (CMU writes "city",
#     "button" with T); the nasal flap ``ɾ̃`` ("winter") is ``N``;
#   - dental and retroflex stops (``t̪ d̪ ʈ ɖ``) are ``T``/``D``; the labial-velar
#     stops ``kp ɡb`` are ``K``/``G``; ``ʋ`` is ``V``;
#   - non-US vowels: ``a`` ``AE`` (TRAP), ``aː`` ``AA``, ``ɔ`` ``AO``,
#     ``e eː`` ``EY``, ``ɛː`` ``EH``, ``ɜ ɜː`` ``ER``, ``o oː əw`` ``OW``, ``u uː`` ``UW``.
MFA_IPA_TO_CMU: dict[str, str] = {
    # stops and affricates
    "p": "P", "pʰ": "P", "pʲ": "P", "pʷ": "P", "b": "B", "bʲ": "B",
    "t": "T", "tʰ": "T", "tʲ": "T", "tʷ": "T", "t̪": "T", "ʈ": "T", "ʈʲ": "T", "ʈʷ": "T",
    "ɾ": "T", "ɾʲ": "T", "ʔ": "T",
    "d": "D", "dʲ": "D", "d̪": "D", "ɖ": "D", "ɖʲ": "D",
    "k": "K", "kʰ": "K", "kʷ": "K", "c": "K", "cʰ": "K", "cʷ": "K", "kp": "K",
    "ɡ": "G", "ɡʷ": "G", "ɟ": "G", "ɟʷ": "G", "ɡb": "G",
    "tʃ": "CH", "dʒ": "JH",
    # fricatives
    "f": "F", "fʲ": "F", "fʷ": "F", "v": "V", "vʲ": "V", "vʷ": "V", "ʋ": "V",
    "θ": "TH", "ð": "DH", "s": "S", "z": "Z", "ʃ": "SH", "ʒ": "ZH", "h": "HH", "ç": "HH",
    # nasals, liquids, glides
    "m": "M", "mʲ": "M", "m̩": "M", "ɱ": "M",
    "n": "N", "n̩": "N", "ɲ": "N", "ɾ̃": "N", "ŋ": "NG",
    "l": "L", "ɫ": "L", "ɫ̩": "L", "ʎ": "L", "ɹ": "R", "j": "Y", "w": "W",
    # vowels
    "i": "IY", "iː": "IY", "ɪ": "IH", "e": "EY", "eː": "EY", "ej": "EY", "ɛ": "EH", "ɛː": "EH",
    "æ": "AE", "a": "AE", "aː": "AA", "ɑ": "AA", "ɑː": "AA", "ɒ": "AO", "ɒː": "AO", "ɔ": "AO",
    "ə": "AH", "ɐ": "AH", "ɚ": "ER", "ɝ": "ER", "ɜ": "ER", "ɜː": "ER",
    "ʊ": "UH", "u": "UW", "uː": "UW", "ʉ": "UW", "ʉː": "UW",
    "o": "OW", "oː": "OW", "ow": "OW", "əw": "OW", "aj": "AY", "aw": "AW", "ɔj": "OY",
}  # fmt: skip
"""MFA ``english_mfa`` IPA phone -> CMU class (the reasons for each choice above)."""


def to_cmu39(phone: str) -> str | None:
    """The CMU class of an aligner phone label, or ``None`` for silence and noise.

    IPA labels (MFA ``english_mfa``) are looked up before upper-casing, which
    would turn ``ɑ`` into ``Ɑ``; ARPA labels lose their stress digit.

    Raises:
        ValueError: a label that is neither a CMU phone nor a known non-speech
            label (a wrong model or a parsing bug, never silently counted).
    """
    ipa = MFA_IPA_TO_CMU.get(unicodedata.normalize("NFC", phone.strip()))
    if ipa is not None:
        return ipa
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
