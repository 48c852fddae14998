"""Montreal Forced Aligner backend: ``mfa align`` once per batch of clips, and its output read back per cue.

MFA pays most of its cost per call (process start, model and dictionary
loading, feature set-up), so :meth:`MfaAligner.align_many` writes a whole batch
of clips into one scratch corpus, one wav and one utterance TextGrid per clip,
and runs ``mfa align`` once. MFA aligns every utterance of a TextGrid on its
own and leaves out those it cannot align (its beam finds no path: the words are
not spoken there); each clip's output becomes one
:class:`~pipeline.align.base.CueOutcome` per cue through the shared rules of
:mod:`pipeline.align.cues`. Utterances are the cues, merged where they overlap
(a TextGrid tier cannot hold overlapping intervals). Each clip is its own MFA
speaker, so feature normalisation stays per clip as if it ran alone.

Scores: MFA's TextGrid and JSON output hold no likelihoods, per phone or
otherwise. ``mfa align`` (3.x) also writes ``alignment_analysis.csv`` beside
them, with each utterance's log-likelihood per frame (``overall_log_likelihood``,
Kaldi GMM units); that becomes the cue's score where present. Phones carry no
score. No score threshold is applied: MFA's units are not calibrated here.

MFA needs Kaldi from conda-forge and downloads its English models from
GitHub, so in production it runs in its own container; here ``mfa`` is absent
and :class:`MfaAligner` says so when built. Its output parsing is plain Python
and runs everywhere: Praat TextGrids (long and short text formats) and MFA's
JSON (``--output_format json``), both with ``words`` and ``phones`` tiers
(``<speaker> - words`` when a file holds several speakers).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pipeline.align.base import (
    AlignedPhone,
    AlignmentError,
    ClipAlignment,
    ClipAudio,
    CueOutcome,
    Utterance,
    cue_label,
    outside_audio,
)
from pipeline.align.cues import Segment, SegmentResult, cue_outcomes, kept_phones, merge_overlapping

log = logging.getLogger(__name__)

Interval = tuple[float, float, str]


class MfaUnavailable(RuntimeError):
    """MFA cannot align anything here: ``mfa`` is not on this machine (it needs conda-forge Kaldi), or its
    setup failed (:data:`SETUP_ERRORS`). Not the clips' fault: the stage stops, and none is rejected."""


SETUP_ERRORS = re.compile(
    r"\b(PretrainedModelNotFoundError|RemoteModelNotFoundError|RemoteModelVersionNotFoundError|ModelLoadError"
    r"|ModelsConnectionError|ModelTypeNotSupportedError|ModelExtensionError|MultipleModelTypesFoundError"
    r"|FileArgumentNotFoundError|DictionaryPathError|DictionaryFileError|DatabaseError|PlatformError"
    r"|RootDirectoryError)\b")
"""The exceptions of ``montreal_forced_aligner.exceptions`` (3.4) that say MFA's setup cannot run: a model or
dictionary missing or unreadable, MFA's own database server, its platform or temporary folder. An ``mfa
align`` failing with one of these rejected every clip of the batch (``alignment_failed``), a night's corpus
for a model not downloaded; it now stops the stage. Not ``ThirdpartyError``: a Kaldi binary failing may be
one utterance's doing, so that batch's clips are aligned each alone (:class:`_Failure`)."""


@dataclass(frozen=True)
class MfaConfig:
    """How ``mfa align`` is called."""

    executable: str = "mfa"
    dictionary: str = "english_us_arpa"  # a model name MFA has downloaded, or a path
    acoustic_model: str = "english_us_arpa"  # "english_mfa" writes IPA phones; to_cmu39 maps both
    output_format: str = "json"  # or "long_textgrid"
    extra_args: tuple[str, ...] = ("--clean", "--single_speaker")
    timeout_s: float = 3600.0  # per ``mfa align`` run, that is per batch of clips


# --- parsing -----------------------------------------------------------------

def _textgrid_values(text: str) -> list[str | float]:
    """The values of a TextGrid, in order, for both long (``key = value``) and short format."""
    values: list[str | float] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or "<exists>" in line or line.endswith(":") and "=" not in line:
            continue
        value = line.split("=", 1)[1].strip() if "=" in line and not line.startswith('"') else line
        if value.startswith('"'):
            values.append(value[1:-1].replace('""', '"'))
        else:
            values.append(float(value))
    return values


def parse_textgrid(path: Path) -> dict[str, list[Interval]]:
    """Interval tiers of a Praat TextGrid: tier name -> ``(start, end, label)`` list.

    Raises:
        ValueError: not a TextGrid, naming the file.
    """
    try:
        values = _textgrid_values(path.read_text(encoding="utf-8-sig"))
        if values[:2] != ["ooTextFile", "TextGrid"]:
            raise ValueError("no ooTextFile/TextGrid header")
        pos, tiers = 5, {}
        for _ in range(int(values[4])):
            kind, name, n = values[pos], values[pos + 1], int(values[pos + 4])
            pos += 5
            width = 3 if kind == "IntervalTier" else 2
            items = values[pos : pos + n * width]
            pos += n * width
            if kind == "IntervalTier":
                tiers[name] = [(float(items[i]), float(items[i + 1]), str(items[i + 2]))
                               for i in range(0, len(items), 3)]
        return tiers
    except (IndexError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable TextGrid ({exc})") from exc


def parse_mfa_json(path: Path) -> dict[str, list[Interval]]:
    """Interval tiers of MFA's JSON output: tier name -> ``(start, end, label)`` list.

    Raises:
        ValueError: not MFA JSON, naming the file.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {name: [(float(s), float(e), str(label)) for s, e, label in tier["entries"]]
                for name, tier in data["tiers"].items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not MFA JSON output ({exc})") from exc


def read_alignment(path: Path) -> dict[str, list[Interval]]:
    """Tiers of an MFA output file, by extension (``.json`` or ``.TextGrid``)."""
    return parse_mfa_json(path) if path.suffix.lower() == ".json" else parse_textgrid(path)


def _tier(tiers: dict[str, list[Interval]], kind: str) -> list[Interval]:
    found = [iv for name, ivs in sorted(tiers.items()) if name == kind or name.endswith(f" - {kind}")
             for iv in ivs]
    return sorted(found)


# --- outcomes per cue ----------------------------------------------------------

_NOT_SPEECH = frozenset({"", "sil", "sp", "spn"})  # phone labels of silence and of words MFA does not know
_FRAME_S = 0.01  # MFA's frame shift: a word's frames weight the utterance score
_NOT_ALIGNED = ("MFA could not align the caption to this stretch of audio "
                "(beam too narrow or the words are not spoken here)")
_UNKNOWN_ONLY = "MFA knows none of the caption's words: all came out as unknown (spn / <unk>)"


def mfa_segments(utterances: Sequence[Utterance], duration_s: float) -> list[Segment]:
    """The utterances MFA is given for a clip: cues merged where they overlap, the rest trimmed apart.

    A TextGrid tier holds no overlapping intervals, so cues overlapping by more
    than :func:`~pipeline.align.cues.merge_overlapping`'s margin become one
    utterance and a smaller overlap is cut from the later cue's start; every
    utterance ends inside the audio. Cues without words are left out.
    """
    segments: list[Segment] = []
    floor = 0.0
    for segment in merge_overlapping(utterances):
        end = min(segment.end_s, duration_s)
        segments.append(replace(segment, start_s=min(max(segment.start_s, floor), end), end_s=end))
        floor = max(floor, end)
    return segments


def alignment_from_tiers(tiers: dict[str, list[Interval]], utterances: Sequence[Utterance], duration_s: float,
                         scores: Sequence[tuple[float, float]] = ()) -> ClipAlignment:
    """Phones of the kept cues and one outcome per utterance, from MFA's output tiers for one clip.

    Words belong to the utterance holding their midpoint, phones to the word
    holding theirs. Output words are matched to the caption's in order (edge
    apostrophes ignored); a word labelled ``<unk>``, or whose phones are all
    ``spn`` (MFA keeps the text of a word missing from its dictionary and
    aligns it as noise), is not placed. A cue with no placed word is
    ``failed`` (``not_aligned``); one missing some is ``partial``
    (``words_skipped``).

    Args:
        tiers: the clip's output (:func:`read_alignment`).
        utterances: the clip's utterances, as given to :meth:`MfaAligner.align`.
        duration_s: the clip's audio length.
        scores: ``(utterance start, log-likelihood per frame)`` of the clip's
            utterances (:func:`read_utterance_scores`); a cue's score is its utterance's.
    """
    words = _tier(tiers, "words")
    phones = [p for p in _tier(tiers, "phones") if p[2]]
    out = ClipAlignment()
    for segment in mfa_segments(utterances, duration_s):
        score = next((s for start, s in scores if abs(start - segment.start_s) < 1e-3), None)
        result = _segment_result(segment, words, phones, score)
        outcomes = cue_outcomes(segment, result, min_score=-math.inf)  # MFA's units are not calibrated
        out.outcomes += outcomes
        out.phones += kept_phones(segment, result, outcomes)
    out.outcomes += [_wordless(u) for u in utterances if not u.words]
    out.outcomes.sort(key=lambda o: o.cue)
    return out


def _segment_result(segment: Segment, words: Sequence[Interval], phones: Sequence[Interval],
                    score: float | None) -> SegmentResult:
    """The caption words MFA placed in ``segment``, by index, with their phones and the utterance score."""
    inside = [w for w in words if w[2] and segment.start_s <= _mid(w) < segment.end_s]
    caption = [w.strip("'") for w in segment.words]  # MFA's tokenizer may drop edge apostrophes ('cause)
    placed: list[tuple[int, AlignedPhone]] = []
    word_scores: dict[int, tuple[float, int]] = {}
    k = 0  # caption words before k are matched or skipped
    for start, end, label in inside:
        own = [p for p in phones if start <= _mid(p) < end]
        key = label.lower().strip("'")
        if key not in caption[k:] or all(p[2] in _NOT_SPEECH for p in own):
            continue  # <unk>, a word aligned as spn, or no caption word left to match
        i = caption.index(key, k)
        k = i + 1
        placed += [(i, AlignedPhone(-1, label, phone, s, e)) for s, e, phone in own]
        frames = max(1, round((end - start) / _FRAME_S))
        word_scores[i] = (0.0, 0) if score is None else (score * frames, frames)  # 0 frames: placed, no score
    reason, detail = ("", "") if word_scores else ("not_aligned", _UNKNOWN_ONLY if inside else _NOT_ALIGNED)
    return SegmentResult(placed, word_scores, (segment.start_s, segment.end_s), ("mfa",), reason, detail)


def _mid(interval: Interval) -> float:
    return (interval[0] + interval[1]) / 2


def _wordless(u: Utterance) -> CueOutcome:
    return CueOutcome(u.cue, "failed", "no_words",
                      f"{cue_label(u.cue, u.start_s, u.end_s)}: the caption has no speakable words",
                      0, 0, None, u.start_s, u.end_s, ("mfa",))


def read_utterance_scores(path: Path) -> dict[str, list[tuple[float, float]]]:
    """Per file stem, ``(utterance start, log-likelihood per frame)`` from MFA's ``alignment_analysis.csv``.

    Empty when the file is absent or lacks the columns (other MFA versions);
    utterances MFA could not align have no likelihood and are left out.
    """
    scores: dict[str, list[tuple[float, float]]] = {}
    if not path.is_file():
        return scores
    with path.open(encoding="utf-8", newline="") as rows:
        for row in csv.DictReader(rows):
            try:
                stem, start, score = row["file"], float(row["begin"]), float(row["overall_log_likelihood"])
            except (KeyError, TypeError, ValueError):
                continue
            scores.setdefault(stem, []).append((start, score))
    return scores


# --- running -----------------------------------------------------------------

def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())


def _write_utterance_textgrid(path: Path, duration_s: float, speaker: str, utterances: Sequence[Utterance]) -> None:
    """MFA's input: one tier, named after the speaker, whose labelled intervals are the utterances.

    The intervals are :func:`mfa_segments`, the same ones :func:`alignment_from_tiers` reads back.
    """
    intervals: list[Interval] = []
    cursor = 0.0
    for segment in mfa_segments(utterances, duration_s):
        if segment.end_s <= segment.start_s:
            continue  # a cue inside the previous one's overlap: nothing of it is left to align
        if segment.start_s > cursor:
            intervals.append((cursor, segment.start_s, ""))
        intervals.append((segment.start_s, segment.end_s, " ".join(segment.words)))
        cursor = segment.end_s
    if cursor < duration_s:
        intervals.append((cursor, duration_s, ""))
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0",
             f"xmax = {duration_s}", "tiers? <exists>", "size = 1", "item []:", "    item [1]:",
             '        class = "IntervalTier"', f'        name = "{speaker}"', "        xmin = 0",
             f"        xmax = {duration_s}", f"        intervals: size = {len(intervals)}"]
    for i, (start, end, text) in enumerate(intervals, 1):
        lines += [f"        intervals [{i}]:", f"            xmin = {start}", f"            xmax = {end}",
                  '            text = "{}"'.format(text.replace('"', '""'))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class MfaAligner:
    """Runs ``mfa align`` once per batch of clips in a scratch corpus."""

    name = "mfa"

    def __init__(self, config: MfaConfig | None = None) -> None:
        self.config = config or MfaConfig()
        executable = shutil.which(self.config.executable)
        if executable is None:
            raise MfaUnavailable(
                f"{self.config.executable!r} not found: the Montreal Forced Aligner needs Kaldi from "
                "conda-forge and runs in its own container; use the pocketsphinx aligner here")
        self._executable = executable
        result = subprocess.run([executable, "version"], capture_output=True, text=True, timeout=120)
        self.version = result.stdout.strip() or "unknown"

    def align(self, clip_id: str, audio: np.ndarray, sample_rate: int,
              utterances: Sequence[Utterance]) -> ClipAlignment:
        """One clip, as a batch of one (:meth:`align_many`).

        Raises:
            AlignmentError: an utterance outside the audio, ``mfa`` failed, or it aligned nothing of the clip.
        """
        result = self.align_many([ClipAudio(clip_id, audio, tuple(utterances))], sample_rate)[0]
        if isinstance(result, AlignmentError):
            raise result
        return result

    def align_many(self, clips: Sequence[ClipAudio], sample_rate: int) -> list[ClipAlignment | AlignmentError]:
        """Every clip of a batch with one ``mfa align`` run (MFA's start-up is paid once).

        Returns:
            One entry per clip, in order: its phones and cue outcomes, or an
            :class:`AlignmentError` naming it when one of its utterances lies
            outside its audio or MFA wrote no alignment for it. When ``mfa``
            times out or aligns nothing of the batch (``NoAlignmentsError``),
            every clip of the batch gets one, with the tail of MFA's messages;
            when it fails otherwise, each clip is aligned alone (a batch of one
            clip gets the error).

        Raises:
            MfaUnavailable: ``mfa`` failed for its setup, not for the clips (:data:`SETUP_ERRORS`).
        """
        with tempfile.TemporaryDirectory(prefix="talkface-mfa-") as scratch:
            corpus, out = Path(scratch, "corpus"), Path(scratch, "out")
            corpus.mkdir()
            stems = [f"{i:04d}_{re.sub(r'[^A-Za-z0-9_-]', '_', c.clip_id)[:80]}" for i, c in enumerate(clips)]
            faults = [outside_audio(c.clip_id, c.utterances, len(c.audio) / sample_rate) for c in clips]
            for clip, stem, fault in zip(clips, stems, faults, strict=True):
                if fault is None:
                    duration_s = len(clip.audio) / sample_rate
                    _write_wav(corpus / f"{stem}.wav", clip.audio, sample_rate)
                    _write_utterance_textgrid(corpus / f"{stem}.TextGrid", duration_s, stem, clip.utterances)
            failure = self._run(corpus, out, Path(scratch, "mfa"), clips) if any(f is None for f in faults) else None
            if failure is not None and failure.each_alone and len(clips) > 1:
                log.warning("%s; aligning each of its clips alone", failure.message)
                return [self.align_many([clip], sample_rate)[0] for clip in clips]
            scores = read_utterance_scores(out / "alignment_analysis.csv")
            return [fault or (AlignmentError(f"clip {clip.clip_id}: {failure.message}") if failure else
                              _read_clip(out, stem, clip, sample_rate, scores.get(stem, ())))
                    for clip, stem, fault in zip(clips, stems, faults, strict=True)]

    def _run(self, corpus: Path, out: Path, work: Path, clips: Sequence[ClipAudio]) -> _Failure | None:
        """``mfa align`` over the batch corpus; why it failed, naming the batch, or None.

        MFA's working files go to ``work`` (``--temporary_directory``), so
        batches aligned at the same time never share MFA's default folder.

        Raises:
            MfaUnavailable: MFA's setup cannot run (:data:`SETUP_ERRORS`).
        """
        command = [self._executable, "align", str(corpus), self.config.dictionary, self.config.acoustic_model,
                   str(out), "--output_format", self.config.output_format, "--temporary_directory", str(work),
                   *self.config.extra_args]
        ids = [c.clip_id for c in clips]
        batch = f"the batch of {len(ids)} clip(s) {', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''}"
        log.debug("running %s", " ".join(command))
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=self.config.timeout_s)
        except subprocess.TimeoutExpired as exc:
            return _Failure(f"mfa align timed out after {exc.timeout:g} s on {batch}: {_tail(exc.stderr)}")
        if result.returncode != 0:
            messages = result.stderr or result.stdout
            if (setup := SETUP_ERRORS.search(messages)) is not None:
                raise MfaUnavailable(
                    f"mfa align could not run on {batch} ({setup.group(1)}; nothing was rejected: fix MFA's "
                    f"setup, for example `mfa model download acoustic {self.config.acoustic_model}`, and run "
                    f"again): {_tail(messages)}")
            return _Failure(f"mfa align exited {result.returncode} on {batch}: {_tail(messages)}",
                            each_alone="NoAlignmentsError" not in messages)
        return None


class _Failure(NamedTuple):
    """Why ``mfa align`` failed on a batch.

    ``each_alone``: it may be one clip's doing (MFA stops on an input it cannot read or a Kaldi error on one
    utterance), so each clip is aligned alone and only the clips failing alone are rejected. Not for
    ``NoAlignmentsError`` (no utterance of the batch aligned: each clip's own failure) or a time-out.
    """

    message: str
    each_alone: bool = False


def _read_clip(out: Path, stem: str, clip: ClipAudio, sample_rate: int,
               scores: Sequence[tuple[float, float]]) -> ClipAlignment | AlignmentError:
    """The clip's alignment from its output file; an error naming the clip when there is none."""
    outputs = sorted(out.rglob(f"{stem}.json")) + sorted(out.rglob(f"{stem}.TextGrid"))
    if not outputs:
        return AlignmentError(
            f"clip {clip.clip_id}: MFA wrote no alignment for it: it could align none of its "
            f"{len(clip.utterances)} cue(s) (their words are not spoken where the captions put them) "
            "or could not read its audio")
    try:
        tiers = read_alignment(outputs[0])
    except ValueError as exc:
        return AlignmentError(f"clip {clip.clip_id}: {exc}")
    return alignment_from_tiers(tiers, clip.utterances, len(clip.audio) / sample_rate, scores)


def _tail(text: str | bytes | None) -> str:
    """The end of a process's messages (``TimeoutExpired`` gives bytes even in text mode)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return (text or "").strip()[-500:] or "no messages"
