"""Montreal Forced Aligner backend: run ``mfa align`` and parse what it writes.

MFA needs Kaldi from conda-forge and downloads its English models from
GitHub, so in production it runs in its own container; here ``mfa`` is absent
and :class:`MfaAligner` says so when built. Its output parsing is plain Python
and runs everywhere: Praat TextGrids (long and short text formats) and MFA's
JSON (``--output_format json``), both with ``words`` and ``phones`` tiers
(``<speaker> - words`` when a file holds several speakers).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.align.base import AlignedPhone, AlignmentError, Utterance

log = logging.getLogger(__name__)

Interval = tuple[float, float, str]


class MfaUnavailable(RuntimeError):
    """The ``mfa`` executable is not on this machine (it needs conda-forge Kaldi)."""


@dataclass(frozen=True)
class MfaConfig:
    """How ``mfa align`` is called."""

    executable: str = "mfa"
    dictionary: str = "english_us_arpa"  # a model name MFA has downloaded, or a path
    acoustic_model: str = "english_us_arpa"  # "english_mfa" writes IPA phones; to_cmu39 maps both
    output_format: str = "json"  # or "long_textgrid"
    extra_args: tuple[str, ...] = ("--clean", "--single_speaker")
    timeout_s: float = 3600.0


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


def phones_from_tiers(tiers: dict[str, list[Interval]], utterances: Sequence[Utterance]) -> list[AlignedPhone]:
    """Labelled phones with their word and cue, found by where each phone's midpoint lies.

    Phones outside every utterance (MFA aligns whole files) are dropped;
    empty labels (silence between words) are skipped.
    """
    words = [w for w in _tier(tiers, "words") if w[2]]
    phones: list[AlignedPhone] = []
    for start, end, label in _tier(tiers, "phones"):
        if not label:
            continue
        mid = (start + end) / 2
        cue = next((u.cue for u in utterances if u.start_s <= mid < u.end_s), None)
        if cue is None:
            continue
        word = next((w[2] for w in words if w[0] <= mid < w[1]), "")
        phones.append(AlignedPhone(cue, word, label, start, end))
    return phones


# --- running -----------------------------------------------------------------

def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())


def _write_utterance_textgrid(path: Path, duration_s: float, utterances: Sequence[Utterance]) -> None:
    """MFA's input: one tier (the speaker) whose labelled intervals are the utterances."""
    intervals: list[Interval] = []
    cursor = 0.0
    for u in sorted(utterances, key=lambda u: u.start_s):
        if u.start_s > cursor:
            intervals.append((cursor, u.start_s, ""))
        intervals.append((u.start_s, u.end_s, " ".join(u.words)))
        cursor = u.end_s
    if cursor < duration_s:
        intervals.append((cursor, duration_s, ""))
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0",
             f"xmax = {duration_s}", "tiers? <exists>", "size = 1", "item []:", "    item [1]:",
             '        class = "IntervalTier"', '        name = "speaker"', "        xmin = 0",
             f"        xmax = {duration_s}", f"        intervals: size = {len(intervals)}"]
    for i, (start, end, text) in enumerate(intervals, 1):
        lines += [f"        intervals [{i}]:", f"            xmin = {start}", f"            xmax = {end}",
                  '            text = "{}"'.format(text.replace('"', '""'))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class MfaAligner:
    """Runs ``mfa align`` on one clip at a time in a scratch folder."""

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
              utterances: Sequence[Utterance]) -> list[AlignedPhone]:
        """Phones of every utterance, times relative to the clip start.

        Raises:
            AlignmentError: ``mfa`` failed or wrote no output for the clip.
        """
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", clip_id)
        with tempfile.TemporaryDirectory(prefix="talkface-mfa-") as scratch:
            corpus, out = Path(scratch, "corpus"), Path(scratch, "out")
            corpus.mkdir()
            _write_wav(corpus / f"{stem}.wav", audio, sample_rate)
            _write_utterance_textgrid(corpus / f"{stem}.TextGrid", len(audio) / sample_rate, utterances)
            command = [self._executable, "align", str(corpus), self.config.dictionary,
                       self.config.acoustic_model, str(out), "--output_format",
                       self.config.output_format, *self.config.extra_args]
            log.debug("running %s", " ".join(command))
            try:
                result = subprocess.run(command, capture_output=True, text=True,
                                        timeout=self.config.timeout_s)
            except subprocess.TimeoutExpired as exc:
                raise AlignmentError(f"clip {clip_id}: mfa align timed out after {exc.timeout}s") from exc
            if result.returncode != 0:
                tail = (result.stderr or result.stdout).strip()[-500:]
                raise AlignmentError(f"clip {clip_id}: mfa align exited {result.returncode}: {tail}")
            outputs = sorted(out.rglob(f"{stem}.json")) + sorted(out.rglob(f"{stem}.TextGrid"))
            if not outputs:
                raise AlignmentError(f"clip {clip_id}: mfa align wrote no alignment (all utterances failed?)")
            try:
                return phones_from_tiers(read_alignment(outputs[0]), utterances)
            except ValueError as exc:
                raise AlignmentError(f"clip {clip_id}: {exc}") from exc
