"""Forced alignment with pocketsphinx 5 and its bundled US-English model (offline).

Caption times are hints. A clip's cues are merged where they overlap
(:func:`pipeline.align.cues.merge_overlapping`) and searched one segment after
the other, each in a window reaching ``pad_s`` into the neighbouring audio but
never back into speech the previous segment was aligned to. When a segment
does not align, a recovery ladder is climbed and every rung tried is recorded
in the cue's outcome:

1. ``window``: the words, all of them, in the padded window (two passes:
   word alignment, then phone and state alignment);
2. ``widen``: the same in a window widened by ``widen_s``;
3. ``pauses`` (windows longer than ``pauses_above_s``): the audio cut in the
   middle of its pauses (:mod:`pipeline.align.pauses`), the words shared among
   the pieces by duration and checked by a prefix search in each piece, each
   piece aligned alone;
4. ``rechunk`` (windows longer than ``rechunk_s``; a shorter one would be one
   piece, ``widen``'s or ``window``'s attempt again): the words cut into pieces at the word
   ends a prefix-grammar search finds (pauses between words), each piece
   aligned alone;
5. ``skip``: a grammar in which every caption word is optional and fillers
   ("uh", "um") may occur between words finds the words the audio holds; those
   are aligned, with the fillers found between them, and the rest recorded as
   skipped;
6. give up on the segment (status ``failed``), keeping the other cues.

Every aligned word carries pocketsphinx's acoustic score per frame. Senone
scores are normalised by the best senone of each frame, so the score measures
how far the forced path is from the best the model can do: about -10 to -15 for
a caption that matches its audio, -45 and below for the words of another
recording. A cue scoring below ``min_score`` is a ``mismatch`` and is excluded.
When the cues of a clip keep less than ``whole_clip_below`` of its words (the
cue times are unreliable), the whole clip's text is aligned in one piece
(chunked) and kept if it places more words.

Long stretches are chunked: pocketsphinx's alignment search fails on long
audio ("final result does not match the grammar"), so a stretch longer than
``max_direct_s`` is cut first: a finite-state grammar accepting any *prefix*
of the remaining words is decoded over the next ``window_s`` seconds; the words
it finds, minus the last one (which may run past the window), form one chunk
ending where that word ends, and the search continues from there.

Alignment records are copied out of pocketsphinx at once: alignment objects
kept across calls crash the decoder.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import version
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from pipeline.align.base import (
    AlignedPhone,
    AlignmentError,
    ClipAlignment,
    CueOutcome,
    Utterance,
    cue_label,
    outside_audio,
)
from pipeline.align.cues import (
    Segment,
    SegmentResult,
    cue_outcomes,
    kept_phones,
    merge_overlapping,
    next_floor,
    search_window,
)
from pipeline.align.g2p import Pronouncer, strip_stress
from pipeline.align.pauses import cut_at_pauses, find_pauses, share_words, speech_in

if TYPE_CHECKING:
    from pocketsphinx import Decoder

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
_VARIANT = re.compile(r"\(\d+\)$")
_PAD_S = 0.3  # silence around every stretch aligned (see SphinxAligner._force)
# hesitations the skip grammar allows between caption words: named apart from the
# caption words "uh" and "um", so a hesitation is never taken for a caption word
# further on, and kept in the text aligned after the search, so its audio is not
# given to the caption word beside it
_FILLERS = {"[uh]": "AH", "[um]": "AH M"}

Placed = list[tuple[int, AlignedPhone]]  # (word index, phone); -1 for silence and fillers
T = TypeVar("T")


@dataclass(frozen=True)
class SphinxConfig:
    """Search windows, recovery ladder, confidence and decoder settings of the pocketsphinx backend."""

    pad_s: float = 0.5  # cue windows reach this far into the neighbouring audio
    widen_s: float = 1.5  # the widen rung's reach
    floor_tolerance_s: float = 0.25  # the next cue's search may start this soon after a cue's caption end
    max_phone_s: float = 0.35  # a word longer than this per phone (+ 0.3 s) is stretched over other speech
    rechunk_s: float = 2.0  # the rechunk rung cuts stretches longer than this
    pauses_above_s: float = 15.0  # the pauses rung: only for cues longer than captions are (a whole utterance)
    min_pause_s: float = 0.3  # a quiet stretch this long is a pause (pipeline.align.pauses.find_pauses)
    pause_margin_db: float = 6.0  # quiet: within this many dB of the segment's noise floor ...
    pause_rise: float = 0.3  # ... or this share of the way from the floor to the speech level
    min_piece_s: float = 2.0  # the pauses rung cuts pieces at least this long
    share_slack: int = 3  # a piece's search should end within this many words of its share by duration
    skip_prob: float = 0.05  # prior of leaving a caption word out in the skip rung
    min_score: float = -38.0  # mean acoustic score per frame below which a cue does not match its audio
    min_cue_share: float = 0.5  # a cue with fewer of its words found does not match its audio
    min_word_score: float = -60.0  # a word scoring below this is not trusted (not counted, not kept)
    good_score: float = -20.0  # a rung placing every word, scoring at least this on average, ends the ladder
    # ... and one placing every word trusted, scoring at least this: spontaneous speech that matches its caption
    # scores -15 to -24 at `window`, and the rungs after it placed the same words at about the same score
    # (bench_caption_yield.py: a third of the cues climbed on; RTF 0.059 -> 0.045 with exact captions, the same
    # phones kept; docs/ingest.md)
    fair_score: float = -24.0
    whole_clip_below: float = 0.85  # align the whole clip's text when cues keep less of its words
    max_direct_s: float = 12.0  # stretches up to this long are aligned in one piece
    window_s: float = 10.0  # audio searched per chunking step
    words_per_s: float = 6.0  # upper bound on speech rate, sizes the prefix grammar
    frame_rate: int = 100  # pocketsphinx frames per second (its -frate default)
    # Gaussians scored per senone and frame in forced alignment (pocketsphinx's -topn; the word
    # searches, and forced alignment's Viterbi fallback on their decoder, keep 4). 6 cut the mean
    # boundary error on the hand labels from 20.8 to 19.5 ms (8: 19.6, 16: 19.1 at 1.3 and 1.75
    # times the CPU), MFA's test alignments unchanged, but it moved word scores at cue edges across
    # min_word_score: with caption times 1 s late a cue lost 4 of its 8 words
    # (tests/test_real_captions.py). Kept at pocketsphinx's 4.
    topn: int = 4
    # added to every phone boundary: against hand-labelled references pocketsphinx
    # places boundaries 12 ms early on average; +10 ms is the shift that minimises
    # the mean error there (benchmarks/bench_align_accuracy.py, docs/ingest.md)
    boundary_shift_s: float = 0.010


@dataclass(frozen=True)
class _Chunk:
    start: int  # sample offsets in the stretch
    end: int
    first: int  # index of its first word
    words: tuple[str, ...]


class SphinxAligner:
    """The embedded default aligner: pocketsphinx with its bundled en-us model."""

    name = "pocketsphinx"

    def __init__(self, config: SphinxConfig | None = None, pronouncer: Pronouncer | None = None) -> None:
        from pocketsphinx import Decoder

        self.config = config or SphinxConfig()
        self.version = version("pocketsphinx")
        # Two decoders, their dictionaries kept the same (_add_words). Forced
        # alignment takes its words from a lattice rescored after the search
        # (bestpath, pocketsphinx's default).
        # Searches for which words the audio holds (the prefix and skip grammars)
        # take them from the Viterbi path: the lattice of the skip grammar (an
        # optional arc per caption word) took 14 s to rescore for a 25 s cue of 64
        # words, and its rescored path dropped more caption words. Where forced
        # alignment fails from the lattice, it is retried from the search
        # decoder's Viterbi path (see _force).
        self._decoder = Decoder(lm=None, loglevel="FATAL", frate=self.config.frame_rate, topn=self.config.topn)
        self._search = Decoder(lm=None, loglevel="FATAL", frate=self.config.frame_rate, bestpath=False)
        self._pronouncer = pronouncer
        self._add_words(list(_FILLERS.items()))
        # answers of this clip's decodes (see _remembered); None outside ``align``
        self._answers: dict[tuple, tuple[object, RuntimeError | None]] | None = None

    # --- a clip ----------------------------------------------------------------

    def align(self, clip_id: str, audio: np.ndarray, sample_rate: int,
              utterances: Sequence[Utterance]) -> ClipAlignment:
        """Phones of the cues that align and one outcome per cue, times relative to ``audio[0]``.

        Raises:
            AlignmentError: audio not at 16 kHz, or an utterance outside the audio.
        """
        if sample_rate != SAMPLE_RATE:
            raise AlignmentError(f"clip {clip_id}: pocketsphinx aligns {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
        fault = outside_audio(clip_id, utterances, len(pcm) / SAMPLE_RATE)
        if fault is not None:
            raise fault
        speakable = [replace(u, words=self._pronounceable(u.words)) for u in utterances]
        segments = merge_overlapping(speakable)
        self._answers = {}
        try:
            result = self._align_segments(pcm, segments)
            if len(segments) > 1 and result.coverage < self.config.whole_clip_below:
                whole = self._align_whole(pcm, segments)
                log.debug("clip %s: cues kept %.0f%% of words, the whole text %.0f%%", clip_id,
                          100 * result.coverage, 100 * whole.coverage)
                if whole.coverage > result.coverage:
                    result = whole
        finally:
            self._answers = None
        missing = {u.cue for u in utterances} - {o.cue for o in result.outcomes}
        result.outcomes += [_unpronounceable(u) for u in utterances if u.cue in missing]
        result.outcomes.sort(key=lambda o: o.cue)
        return result

    def _align_segments(self, pcm: np.ndarray, segments: Sequence[Segment]) -> ClipAlignment:
        """Each segment in its window, in time order, climbing the ladder where needed."""
        out = ClipAlignment()
        floor = 0.0
        for segment in segments:
            found = self._ladder(pcm, segment, floor)
            outcomes = cue_outcomes(segment, found, self.config.min_score, self.config.min_cue_share)
            out.outcomes += outcomes
            out.phones += kept_phones(segment, found, outcomes)
            ends = [p.end_s for i, p in found.phones if i in found.word_scores]
            if ends and any(o.kept for o in outcomes):
                floor = max(floor, next_floor(segment, max(ends), self.config.floor_tolerance_s))
        return out

    def _align_whole(self, pcm: np.ndarray, segments: Sequence[Segment]) -> ClipAlignment:
        """The whole clip's text over the whole audio, chunked; words keep their cues."""
        whole = Segment(0.0, len(pcm) / SAMPLE_RATE, sum((s.words for s in segments), ()),
                        sum((s.word_cues for s in segments), ()), sum((s.cue_times for s in segments), ()))
        try:
            found = self._result(pcm, (0.0, whole.end_s), ("whole_clip",),
                                 self._chunked(pcm, whole.words, self.config.max_direct_s))
        except RuntimeError as exc:
            found = SegmentResult([], {}, (0.0, whole.end_s), ("whole_clip",), "no_match", _plain(exc))
        outcomes = cue_outcomes(whole, found, self.config.min_score, self.config.min_cue_share)
        return ClipAlignment(kept_phones(whole, found, outcomes), outcomes)

    # --- the recovery ladder -----------------------------------------------------

    def _ladder(self, pcm: np.ndarray, segment: Segment, floor: float) -> SegmentResult:
        """Climb the rungs until one places words that match the audio; the best attempt otherwise."""
        cfg, audio_s = self.config, len(pcm) / SAMPLE_RATE
        rungs: list[str] = []
        best: SegmentResult | None = None
        window = search_window(segment, cfg.pad_s, floor, audio_s)
        wide = search_window(segment, cfg.widen_s, floor, audio_s)
        attempts = [
            ("window", window, lambda part: self._chunked(part, segment.words, cfg.max_direct_s)),
            ("widen", wide, lambda part: self._chunked(part, segment.words, cfg.max_direct_s)),
            ("pauses", wide, lambda part: self._by_pauses(part, segment.words)),
            ("rechunk", wide, lambda part: self._chunked(part, segment.words, cfg.rechunk_s)),
            ("skip", wide, lambda part: self._skipping(part, segment.words)),
        ]
        for rung, (start, end), attempt in attempts:
            if ((rung == "widen" and wide == window)
                    or (rung == "pauses" and wide[1] - wide[0] <= cfg.pauses_above_s)
                    or (rung == "rechunk" and wide[1] - wide[0] <= min(cfg.rechunk_s, cfg.max_direct_s))):
                # rechunk of a window this short is one piece: widen's (or window's) attempt again
                continue
            rungs.append(rung)
            part = pcm[round(start * SAMPLE_RATE): round(end * SAMPLE_RATE)]
            try:
                placed = attempt(part)
            except RuntimeError as exc:
                log.debug("%s: rung %s failed: %s", segment.where(), rung, exc)
                best = best or SegmentResult([], {}, (start, end), (), "no_match", _plain(exc))
                continue
            found = self._result(part, (start, end), (), placed, offset=start)
            if best is None or _better(found, best, cfg.min_score):
                best = found
            if self._good_enough(placed, len(segment.words)):
                break
        assert best is not None
        return replace(best, rungs=tuple(rungs))

    def _result(self, pcm: np.ndarray, window: tuple[float, float], rungs: tuple[str, ...], placed: Placed,
                offset: float = 0.0) -> SegmentResult:
        """Placed phones shifted to clip time, with each trusted word's summed score and frames.

        A word scoring below ``min_word_score`` per frame is not trusted (a caption
        word that is not spoken, or speech squeezed into a window that is too
        short), nor one far longer than its phones take (a last word stretched
        over the next cue's speech): it counts as not found and its phones are
        dropped.
        """
        cfg, end = self.config, len(pcm) / SAMPLE_RATE
        trusted = self._trusted(placed)
        phones = [(i if i in trusted else -1,
                   replace(p, start_s=offset + min(max(p.start_s + cfg.boundary_shift_s, 0.0), end),
                           end_s=offset + min(max(p.end_s + cfg.boundary_shift_s, 0.0), end))) for i, p in placed]
        return SegmentResult(phones, trusted, window, rungs)

    def _trusted(self, placed: Placed) -> dict[int, tuple[float, int]]:
        """:meth:`_word_scores` of the placed words that are trusted (see :meth:`_result`)."""
        cfg = self.config
        n_phones = Counter(i for i, _ in placed if i >= 0)
        return {i: s for i, s in self._word_scores(placed).items() if s[0] / s[1] >= cfg.min_word_score
                and s[1] / cfg.frame_rate <= cfg.max_phone_s * n_phones[i] + 0.3}

    def _word_scores(self, placed: Placed) -> dict[int, tuple[float, int]]:
        """Word index -> (summed acoustic score, frames) of the placed words."""
        scores: dict[int, tuple[float, int]] = {}
        for i, p in placed:
            if i >= 0:
                frames = max(1, round((p.end_s - p.start_s) * self.config.frame_rate))
                total, n = scores.get(i, (0.0, 0))
                scores[i] = (total + (p.score or 0.0) * frames, n + frames)
        return scores

    def _good_enough(self, placed: Placed, n_words: int) -> bool:
        """Whether a rung ends the ladder: every word placed, the two at each edge trusted, and a good average
        (``good_score``), or a fair one (``fair_score``) with every word trusted.

        Judged before untrusted words are dropped: a word the speaker reduced
        ("pretty" as "p r iy") scores low on its own without meaning the window
        is wrong, but an untrusted word near either edge, or a poor average, is
        what speech squeezed into a window that is too short looks like. A fair
        average with a word untrusted goes on: a later rung may place it (MFA's
        ``mfa_long`` kept 11 of its 19 reference phones stopping there).
        """
        cfg = self.config
        scores = self._word_scores(placed)
        frames = sum(n for _, n in scores.values())
        if len(scores) != n_words or not frames:
            return False
        edges = [scores[i] for i in {0, 1, n_words - 2, n_words - 1} if 0 <= i < n_words]
        mean = sum(total for total, _ in scores.values()) / frames
        return all(total / n >= cfg.min_word_score for total, n in edges) and (
            mean >= cfg.good_score or (mean >= cfg.fair_score and len(self._trusted(placed)) == n_words))

    def _chunked(self, pcm: np.ndarray, words: tuple[str, ...], max_piece_s: float) -> Placed:
        """``words`` over all of ``pcm``, cut into pieces no longer than ``max_piece_s`` where needed."""
        return self._force_chunks(pcm, self._chunks(pcm, words, max_piece_s))

    def _by_pauses(self, pcm: np.ndarray, words: tuple[str, ...]) -> Placed:
        """``words`` over ``pcm`` cut in pauses, each piece holding the words the audio shows it holds.

        Pieces are cut mid-pause (:mod:`pipeline.align.pauses`), so a piece's
        last word ends inside it. Its words are found by a search from the
        first word not yet placed that should end within ``share_slack`` words
        of the piece's share by duration (the bound keeps the search from
        explaining a hoarse voice as silence); when it cannot get that far, the
        words its best path holds are taken, and when it finds none, the share
        as it is. The last piece takes the words left. A piece
        whose words do not all fit (a word said faster than the model's
        shortest phones allow) keeps those a search with every word optional
        finds (:meth:`_skipping`), so it costs a word or two, not the piece.
        """
        cfg = self.config
        pauses = find_pauses(pcm, SAMPLE_RATE, cfg.min_pause_s, cfg.pause_margin_db, cfg.pause_rise)
        pieces = cut_at_pauses(pauses, len(pcm) / SAMPLE_RATE, cfg.min_piece_s)
        if len(pieces) < 2:
            raise RuntimeError("no pause to cut the stretch at")
        phones = [len(self._decoder.lookup_word(w).split()) for w in words]
        shares = share_words(phones, [speech_in(p, pauses) for p in pieces])
        chunks: list[_Chunk] = []
        first = 0
        for k, (piece, (_, share_end)) in enumerate(zip(pieces, shares)):
            if first >= len(words):
                break
            start, stop = round(piece.start_s * SAMPLE_RATE), round(piece.end_s * SAMPLE_RATE)
            end = len(words)
            if k < len(pieces) - 1:
                lo, hi = max(first + 1, share_end - cfg.share_slack), min(len(words), share_end + cfg.share_slack)
                found = self._spot_prefix(pcm[start:stop], words[first: max(hi, lo)], min_words=lo - first)
                end = first + len(found) if found else max(share_end, first)
            if end > first:
                chunks.append(_Chunk(start, stop, first, words[first:end]))
            first = end
        return self._force_chunks(pcm, chunks, self._skipping)

    def _force_chunks(self, pcm: np.ndarray, chunks: Sequence[_Chunk],
                      fallback: Callable[[np.ndarray, tuple[str, ...]], Placed] | None = None) -> Placed:
        """Each chunk's words aligned to its audio (by ``fallback`` where that fails), in stretch time.

        A piece that does not align costs its own words only (left unplaced),
        unless it is the only piece: then the stretch has failed.
        """
        placed: Placed = []
        for chunk in chunks:
            offset = chunk.start / SAMPLE_RATE
            log.debug("chunk %.2f-%.2fs, %d words", offset, chunk.end / SAMPLE_RATE, len(chunk.words))
            try:
                found = self._force_or(pcm[chunk.start:chunk.end], chunk.words, fallback if len(chunks) > 1 else None)
            except RuntimeError as exc:
                if len(chunks) == 1:
                    raise
                log.debug("chunk %.2f-%.2fs left unaligned: %s", offset, chunk.end / SAMPLE_RATE, exc)
                continue
            placed += [(chunk.first + i if i >= 0 else -1, p.with_offset(offset)) for i, p in found]
        if not placed:
            raise RuntimeError("no piece of the stretch aligned")
        return placed

    def _force_or(self, pcm: np.ndarray, words: tuple[str, ...],
                  fallback: Callable[[np.ndarray, tuple[str, ...]], Placed] | None) -> Placed:
        """:meth:`_force`, and where that fails, ``fallback`` (if any) on the same audio and words."""
        try:
            return self._force(pcm, words)
        except RuntimeError:
            if fallback is None:
                raise
            return fallback(pcm, words)

    def _skipping(self, pcm: np.ndarray, words: tuple[str, ...]) -> Placed:
        """The caption words the audio holds (each optional, fillers allowed), then aligned with the fillers found."""
        cfg = self.config
        final = len(words)
        transitions = []
        for k, word in enumerate(words):
            transitions += [(k, k + 1, 1.0 - cfg.skip_prob, word), (k, k + 1, cfg.skip_prob)]
            transitions += [(k, k, 0.02, filler) for filler in _FILLERS]
        text: list[str] = []
        caption_index: list[int] = []  # of each word of ``text``; -1 for fillers
        k = 0  # the grammar keeps order: the words found are matched to caption positions
        for word, _ in self._grammar_search("skip", final, transitions, pcm):
            if word in _FILLERS:
                text.append(word)
                caption_index.append(-1)
            elif word in words[k:]:
                k = words.index(word, k)
                text.append(word)
                caption_index.append(k)
                k += 1
        if not any(i >= 0 for i in caption_index):
            raise RuntimeError("none of the caption's words were found in the audio")
        return [(caption_index[i] if i >= 0 else -1, p) for i, p in self._force(pcm, tuple(text))]

    # --- pocketsphinx --------------------------------------------------------------

    def _pronounceable(self, words: tuple[str, ...]) -> tuple[str, ...]:
        """``words`` minus those nobody can pronounce; the rest added to the decoder's dictionary."""
        missing = sorted({w for w in words if self._decoder.lookup_word(w) is None})
        if missing and self._pronouncer is None:
            self._pronouncer = Pronouncer()
        added = []
        for word in missing:
            try:
                added.append((word, " ".join(strip_stress(self._pronouncer.pronounce(word)))))
            except ValueError as exc:
                log.warning("%s; the word is left out of the alignment", exc)
        self._add_words(added)
        return tuple(w for w in words if self._decoder.lookup_word(w) is not None)

    def _add_words(self, entries: Sequence[tuple[str, str]]) -> None:
        """(word, phones) pairs into both decoders' dictionaries."""
        for decoder in (self._decoder, self._search):
            for i, (word, phones) in enumerate(entries):
                decoder.add_word(word, phones, update=i == len(entries) - 1)

    def _force(self, pcm: np.ndarray, words: tuple[str, ...]) -> Placed:
        """:meth:`_force_padded`, answered from memory when this clip asked it before."""
        return list(self._remembered(("force", words), pcm, lambda: self._force_padded(pcm, words)))

    def _force_padded(self, pcm: np.ndarray, words: tuple[str, ...]) -> Placed:
        """Two-pass alignment of ``words`` to all of ``pcm``, with silence around it.

        Without room for silence at the edges, pocketsphinx stretches the first
        phone back to the start of the audio when speech starts within a few
        frames, and its phone pass sometimes fails outright (seen on lossy AAC
        whose first frames carry a transient). ``_PAD_S`` of silence on both
        sides avoids both; times are shifted back and clipped to the audio. The
        phone pass also fails on some stretches for a given placement of the
        10 ms frames only, so a failure is retried once with the frames moved
        by half a frame. Where both fail, the word pass is read from the search
        decoder's Viterbi path instead of the rescored lattice: now and then the
        phone pass cannot finish from the lattice's word placement but can from
        the Viterbi path's ("Failed to stop utterance processing"; MFA's
        ``multilingual_ipa``, whose 13 words then align). The lattice stays
        first: its alignments are the ones the score thresholds were set on
        (read from the Viterbi path first, a caption from another recording
        kept 8 of its 12 words at -37.9 per frame, just above ``min_score``).
        """
        end = len(pcm) / SAMPLE_RATE
        half_frame = 0.5 / self.config.frame_rate
        for decoder, lead_s in ((self._decoder, _PAD_S), (self._decoder, _PAD_S + half_frame),
                                (self._search, _PAD_S)):
            padded = np.concatenate([np.zeros(round(lead_s * SAMPLE_RATE), np.int16), pcm,
                                     np.zeros(round(_PAD_S * SAMPLE_RATE), np.int16)])
            try:
                placed = self._force_once(decoder, padded, words)
            except RuntimeError as exc:
                failure = exc
                continue
            return [(i, replace(p, start_s=min(max(p.start_s - lead_s, 0.0), end),
                                end_s=min(max(p.end_s - lead_s, 0.0), end)))
                    for i, p in placed if p.end_s > lead_s and p.start_s < lead_s + end]
        raise failure

    def _force_once(self, decoder: Decoder, pcm: np.ndarray, words: tuple[str, ...]) -> Placed:
        """One two-pass alignment on ``decoder``; records are copied out of pocketsphinx immediately."""
        data = pcm.tobytes()
        try:
            decoder.set_align_text(" ".join(words))
            self._decode(decoder, data)  # pass 1: word alignment
            decoder.set_alignment()
            self._decode(decoder, data)  # pass 2: phone and state alignment
        except RuntimeError as exc:
            raise RuntimeError(f"the words do not fit the audio ({exc})") from exc
        alignment = decoder.get_alignment()
        if alignment is None:
            raise RuntimeError("pocketsphinx produced no alignment")
        step = 1.0 / self.config.frame_rate
        out: Placed = []
        k = 0
        for entry in alignment:
            word = _VARIANT.sub("", entry.name)
            index = -1
            if not word.startswith("<") and not word.startswith("["):
                if word not in words[k:]:
                    raise RuntimeError(f"aligned words differ from the text at {word!r}")
                index = words.index(word, k)  # pocketsphinx now and then leaves a short word out
                k = index + 1
            out += [(index, AlignedPhone(-1, word, p.name, p.start * step, (p.start + p.duration) * step,
                                         p.score / max(p.duration, 1))) for p in entry]
        del alignment  # never outlive this call (see module docstring)
        return out

    @staticmethod
    def _decode(decoder: Decoder, data: bytes) -> None:
        """One utterance, decoded as if it were the decoder's first.

        pocketsphinx's noise subtraction keeps its noise estimate from one
        utterance to the next (``start_utt`` does not reset it), so without
        ``start_stream`` a stretch would align differently depending on which
        clips the decoder saw before it (up to 150 ms on one phone of
        polyglotdb's clip after MFA's ``cold_corpus``): results would depend on
        which worker thread got which clips. ``start_stream`` resets the
        estimate. pocketsphinx 5 calls it deprecated ("unnecessary"), but nothing
        else resets it; its DeprecationWarning is hidden by Python's default
        filters (and by pytest's configuration in pyproject.toml), not here:
        ``warnings.catch_warnings`` is not thread-safe, and aligners run in threads.
        """
        decoder.start_stream()
        decoder.start_utt()
        decoder.process_raw(data, full_utt=True)
        decoder.end_utt()

    def _chunks(self, pcm: np.ndarray, words: tuple[str, ...], max_piece_s: float) -> list[_Chunk]:
        cfg = self.config
        window = int(cfg.window_s * SAMPLE_RATE)
        chunks: list[_Chunk] = []
        start, i = 0, 0
        while len(pcm) - start > max_piece_s * SAMPLE_RATE and i < len(words) - 1:
            prefix = words[i : i + max(2, int(cfg.window_s * cfg.words_per_s))]
            ends = self._spot_prefix(pcm[start : start + window], prefix)
            if len(ends) < 2:
                if chunks:
                    break  # align the rest in one piece
                raise RuntimeError(f"chunking found fewer than 2 words after {start / SAMPLE_RATE:.2f}s")
            keep = ends[:-1]  # the last word found may run past the window
            cut = start + keep[-1]
            chunks.append(_Chunk(start, cut, i, prefix[: len(keep)]))
            start, i = cut, i + len(keep)
        if i < len(words):
            chunks.append(_Chunk(start, len(pcm), i, words[i:]))
        return chunks

    def _spot_prefix(self, pcm: np.ndarray, prefix: tuple[str, ...], min_words: int = 1) -> list[int]:
        """End samples of the words of the longest prefix of ``prefix`` that ``pcm`` holds.

        The grammar ends only after ``min_words`` words or more; where the audio
        cannot hold that many, the words of the search's best partial path come back.
        """
        final = len(prefix) + 1
        transitions = [(k, k + 1, 0.5, w) for k, w in enumerate(prefix)]
        transitions += [(k, final, 0.5) for k in range(max(1, min_words), len(prefix) + 1)]  # stop after a word
        found = [(w, end) for w, end in self._grammar_search("prefix", final, transitions, pcm) if w in prefix]
        ends = []
        for k, (word, end) in enumerate(found):
            if k >= len(prefix) or word != prefix[k]:
                break
            ends.append(end)
        return ends

    def _grammar_search(self, name: str, final: int, transitions: list[tuple], pcm: np.ndarray,
                        ) -> list[tuple[str, int]]:
        """(word, end sample) along the search decoder's Viterbi path through a finite-state grammar.

        Word variants ("and(2)") come back as the word; silences and noises as pocketsphinx names them.
        """
        def search() -> list[tuple[str, int]]:
            decoder = self._search
            decoder.add_fsg(name, decoder.create_fsg(name, 0, final, transitions))
            decoder.activate_search(name)
            self._decode(decoder, pcm.tobytes())
            samples_per_frame = SAMPLE_RATE // self.config.frame_rate
            return [(_VARIANT.sub("", s.word), (s.end_frame + 1) * samples_per_frame) for s in decoder.seg() or ()]

        return list(self._remembered(("search", final, tuple(transitions)), pcm, search))

    def _remembered(self, question: tuple, pcm: np.ndarray, decode: Callable[[], T]) -> T:
        """``decode()``'s answer (or failure) to ``question`` on ``pcm``, decoded once per clip.

        The rungs of the ladder often repeat another rung's decode: the same
        prefix search opens ``window``'s and ``rechunk``'s chunking of a long
        stretch, and ``skip`` aligns every caption word again when the audio
        holds them all (31 of 690 decodes of the caption-yield benchmark with
        exact captions; a tenth of the CPU of its one-cue reference runs).
        Decoding is deterministic (:meth:`_decode`), so the remembered answer
        is the one decoding again would give.
        """
        if self._answers is None:
            return decode()
        key = (*question, hashlib.blake2b(np.ascontiguousarray(pcm), digest_size=16).digest())
        if key not in self._answers:
            try:
                self._answers[key] = (decode(), None)
            except RuntimeError as exc:
                self._answers[key] = (None, exc)
        answer, failure = self._answers[key]
        if failure is not None:
            raise failure
        return answer


def _mean_score(result: SegmentResult) -> float:
    frames = sum(n for _, n in result.word_scores.values())
    return sum(s for s, _ in result.word_scores.values()) / frames if frames else float("-inf")


def _better(a: SegmentResult, b: SegmentResult, min_score: float) -> bool:
    """Prefer results that match the audio, then more words placed, then a higher score."""
    def rank(r: SegmentResult) -> tuple[bool, int, float]:
        return (_mean_score(r) >= min_score, len(r.word_scores), _mean_score(r))
    return rank(a) > rank(b)


def _plain(exc: Exception) -> str:
    """pocketsphinx's messages in words a person understands."""
    text = str(exc)
    if "sub-word alignment" in text or "stop utterance" in text or "do not fit" in text:
        return "the caption's words do not fit this stretch of audio (wrong words, or the speech lies elsewhere)"
    return text


def _unpronounceable(u: Utterance) -> CueOutcome:
    return CueOutcome(u.cue, "failed", "unpronounceable",
                      f"{cue_label(u.cue, u.start_s, u.end_s)}: no word of the caption can be pronounced",
                      len(u.words), 0, None, u.start_s, u.end_s, ())
