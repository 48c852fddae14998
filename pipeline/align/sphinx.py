"""Forced alignment with pocketsphinx 5 and its bundled US-English model (offline).

Per utterance: words missing from the model's dictionary get a pronunciation
from :class:`pipeline.align.g2p.Pronouncer`, then pocketsphinx's two-pass
alignment (word alignment, then phone and state alignment) runs and the result
is copied out to plain records at once (alignment objects kept across calls
crash the decoder).

Long utterances are chunked. Pocketsphinx's alignment search can fail on long
stretches of real-world audio ("final result does not match the grammar"), so
an utterance longer than ``max_direct_s`` is cut into pieces first: a
finite-state grammar accepting any *prefix* of the remaining words is decoded
over the next ``window_s`` seconds; the words it finds, minus the last one
(which may run past the window), form one chunk ending where that word ends,
and the search continues from there. Each chunk is then force-aligned alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib.metadata import version

import numpy as np

from pipeline.align.base import AlignedPhone, AlignmentError, Utterance
from pipeline.align.g2p import Pronouncer, strip_stress

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
_VARIANT = re.compile(r"\(\d+\)$")
_PAD_S = 0.3  # silence around the audio when the phone pass is retried


@dataclass(frozen=True)
class SphinxConfig:
    """Chunking and decoder settings of the pocketsphinx backend."""

    max_direct_s: float = 12.0  # utterances up to this long are aligned in one piece
    window_s: float = 10.0  # audio searched per chunking step
    words_per_s: float = 6.0  # upper bound on speech rate, sizes the prefix grammar
    frame_rate: int = 100  # pocketsphinx frames per second (its -frate default)


@dataclass(frozen=True)
class _Chunk:
    start: int  # sample offsets in the utterance
    end: int
    words: tuple[str, ...]


class SphinxAligner:
    """The embedded default aligner: pocketsphinx with its bundled en-us model."""

    name = "pocketsphinx"

    def __init__(self, config: SphinxConfig | None = None, pronouncer: Pronouncer | None = None) -> None:
        from pocketsphinx import Decoder

        self.config = config or SphinxConfig()
        self.version = version("pocketsphinx")
        self._decoder = Decoder(lm=None, loglevel="FATAL", frate=self.config.frame_rate)
        self._pronouncer = pronouncer

    def align(self, clip_id: str, audio: np.ndarray, sample_rate: int,
              utterances: Sequence[Utterance]) -> list[AlignedPhone]:
        """Phones of every utterance, times relative to the clip start (``audio[0]``).

        Raises:
            AlignmentError: an utterance outside the audio, with words that
                cannot be pronounced, or that pocketsphinx cannot align.
        """
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"pocketsphinx aligns {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
        phones: list[AlignedPhone] = []
        for utt in utterances:
            start, end = round(utt.start_s * SAMPLE_RATE), round(utt.end_s * SAMPLE_RATE)
            where = f"clip {clip_id} cue {utt.cue} ({utt.start_s:.2f}-{utt.end_s:.2f}s)"
            if end > len(pcm) + SAMPLE_RATE // 100 or start >= end:
                raise AlignmentError(f"{where}: outside the audio ({len(pcm) / SAMPLE_RATE:.2f}s)")
            try:
                found = self._align_utterance(pcm[start:end], utt.words, utt.cue)
            except (RuntimeError, ValueError) as exc:
                raise AlignmentError(f"{where}: {exc}") from exc
            phones.extend(p.with_offset(start / SAMPLE_RATE) for p in found)
        return phones

    def _align_utterance(self, pcm: np.ndarray, words: tuple[str, ...], cue: int) -> list[AlignedPhone]:
        self._add_missing_words(words)
        if len(pcm) <= self.config.max_direct_s * SAMPLE_RATE:
            return self._force(pcm, words, cue)
        phones: list[AlignedPhone] = []
        for chunk in self._chunks(pcm, words):
            log.debug("cue %d: chunk %.2f-%.2fs, %d words", cue, chunk.start / SAMPLE_RATE,
                      chunk.end / SAMPLE_RATE, len(chunk.words))
            aligned = self._force(pcm[chunk.start:chunk.end], chunk.words, cue)
            phones.extend(p.with_offset(chunk.start / SAMPLE_RATE) for p in aligned)
        return phones

    def _add_missing_words(self, words: tuple[str, ...]) -> None:
        missing = sorted({w for w in words if self._decoder.lookup_word(w) is None})
        if not missing:
            return
        if self._pronouncer is None:
            self._pronouncer = Pronouncer()
        for i, word in enumerate(missing):
            phones = " ".join(strip_stress(self._pronouncer.pronounce(word)))
            self._decoder.add_word(word, phones, update=i == len(missing) - 1)

    def _force(self, pcm: np.ndarray, words: tuple[str, ...], cue: int) -> list[AlignedPhone]:
        """Two-pass alignment of ``words`` to all of ``pcm``.

        The phone pass sometimes fails where the word pass succeeded (seen on
        lossy AAC whose first frames carry a transient); surrounding the audio
        with silence lets it finish, so a failure is retried once that way and
        the times are shifted back and clipped to the audio.
        """
        try:
            return self._force_once(pcm, words, cue)
        except RuntimeError as exc:
            log.debug("cue %d: %s; retrying with %.2fs of silence around the audio", cue, exc, _PAD_S)
        pad = np.zeros(int(_PAD_S * SAMPLE_RATE), np.int16)
        end = len(pcm) / SAMPLE_RATE
        return [replace(p, start_s=min(max(p.start_s - _PAD_S, 0.0), end), end_s=min(max(p.end_s - _PAD_S, 0.0), end))
                for p in self._force_once(np.concatenate([pad, pcm, pad]), words, cue)
                if p.end_s > _PAD_S and p.start_s < _PAD_S + end]

    def _force_once(self, pcm: np.ndarray, words: tuple[str, ...], cue: int) -> list[AlignedPhone]:
        """One two-pass alignment; records are copied out of pocketsphinx immediately."""
        decoder, data = self._decoder, pcm.tobytes()
        decoder.set_align_text(" ".join(words))
        self._decode(data)  # pass 1: word alignment
        decoder.set_alignment()
        self._decode(data)  # pass 2: phone and state alignment
        alignment = decoder.get_alignment()
        if alignment is None:
            raise RuntimeError("pocketsphinx produced no alignment")
        step = 1.0 / self.config.frame_rate
        out: list[AlignedPhone] = []
        spoken: list[str] = []
        for entry in alignment:
            word = _VARIANT.sub("", entry.name)
            if not word.startswith("<"):
                spoken.append(word)
            out.extend(AlignedPhone(cue, word, p.name, p.start * step, (p.start + p.duration) * step)
                       for p in entry)
        del alignment  # never outlive this call (see module docstring)
        if spoken != list(words):
            raise RuntimeError(f"aligned words {' '.join(spoken[:8])}... differ from the text")
        return out

    def _decode(self, data: bytes) -> None:
        self._decoder.start_utt()
        self._decoder.process_raw(data, full_utt=True)
        self._decoder.end_utt()

    def _chunks(self, pcm: np.ndarray, words: tuple[str, ...]) -> list[_Chunk]:
        cfg = self.config
        window = int(cfg.window_s * SAMPLE_RATE)
        chunks: list[_Chunk] = []
        start, i = 0, 0
        while len(pcm) - start > cfg.max_direct_s * SAMPLE_RATE and i < len(words):
            prefix = words[i : i + max(2, int(cfg.window_s * cfg.words_per_s))]
            ends = self._spot_prefix(pcm[start : start + window], prefix)
            if len(ends) < 2:
                raise RuntimeError(f"chunking found fewer than 2 words after {start / SAMPLE_RATE:.2f}s")
            keep = ends[:-1]  # the last word found may run past the window
            cut = start + keep[-1]
            chunks.append(_Chunk(start, cut, prefix[: len(keep)]))
            start, i = cut, i + len(keep)
        if i < len(words):
            chunks.append(_Chunk(start, len(pcm), words[i:]))
        return chunks

    def _spot_prefix(self, pcm: np.ndarray, prefix: tuple[str, ...]) -> list[int]:
        """End samples of the words of the longest prefix of ``prefix`` that ``pcm`` holds."""
        decoder = self._decoder
        final = len(prefix) + 1
        transitions = [(k, k + 1, 0.5, w) for k, w in enumerate(prefix)]
        transitions += [(k, final, 0.5) for k in range(1, len(prefix) + 1)]  # stop after any word
        decoder.add_fsg("prefix", decoder.create_fsg("prefix", 0, final, transitions))
        decoder.activate_search("prefix")
        self._decode(pcm.tobytes())
        samples_per_frame = SAMPLE_RATE // self.config.frame_rate
        found = [(_VARIANT.sub("", s.word), (s.end_frame + 1) * samples_per_frame)
                 for s in decoder.seg() if _VARIANT.sub("", s.word) in prefix]
        ends = []
        for k, (word, end) in enumerate(found):
            if k >= len(prefix) or word != prefix[k]:
                break
            ends.append(end)
        return ends

