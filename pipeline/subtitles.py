"""Subtitle cues: parse SRT/VTT, clean them to speakable text, cut them to a segment.

Subtitles are the transcripts the aligner forces onto the audio, so what
survives here must be words actually spoken in the cue's time span: markup,
sound descriptions ([Music], (applause)), speaker labels and music-note lyrics
are removed; YouTube's rolling automatic captions, where each cue repeats the
previous line before adding new words, are reduced to the new words; cues of
near-zero length (the 10 ms "transition" cues of auto captions) are dropped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

Seconds = float

SUBTITLE_SUFFIXES: tuple[str, ...] = (".vtt", ".srt")


class SubtitleError(ValueError):
    """A subtitle file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Cue:
    """One subtitle cue; a ``subtitles`` row once it has a clip id, kind and language."""

    index: int  # 0-based position in the clip, after cleaning
    start_s: Seconds
    end_s: Seconds
    text_raw: str  # as in the file
    text: str  # cleaned, speakable text (may still hold digits; see speakable_words)

    @property
    def duration_s(self) -> Seconds:
        return self.end_s - self.start_s

    def to_row(self, clip_id: str, kind: str, lang: str) -> dict[str, object]:
        return {"clip_id": clip_id, "cue": self.index, "start_s": round(self.start_s, 3),
                "end_s": round(self.end_s, 3), "text_raw": self.text_raw, "text": self.text,
                "kind": kind, "lang": lang}


@dataclass(frozen=True)
class CueConfig:
    """How cues are cleaned and cut."""

    min_duration_s: Seconds = 0.05  # shorter cues are transition artefacts of auto captions
    max_cut_fraction: float = 0.2  # drop a cue losing more than this to the segment edge
    dedupe: bool | None = None  # rolling auto-caption de-duplication; None: detect


# --- reading -----------------------------------------------------------------

def read_cues(path: Path) -> list[Cue]:
    """Raw cues of an ``.srt`` or ``.vtt`` file (``text`` = markup-free text, not cleaned).

    Raises:
        SubtitleError: unknown suffix, not UTF-8, unparsable or without cues.
    """
    suffix = path.suffix.lower()
    if suffix not in SUBTITLE_SUFFIXES:
        raise SubtitleError(f"{path}: not a subtitle file (expected {', '.join(SUBTITLE_SUFFIXES)})")
    try:
        content = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubtitleError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise SubtitleError(f"{path}: cannot read ({exc})") from exc
    try:
        cues = _parse_vtt(content) if suffix == ".vtt" else _parse_srt(content)
    except Exception as exc:  # the parsers raise their own assorted types
        raise SubtitleError(f"{path}: unparsable {suffix[1:].upper()} ({type(exc).__name__}: {exc})") from exc
    if not cues:
        raise SubtitleError(f"{path}: no subtitle cues")
    return cues


def _parse_srt(content: str) -> list[Cue]:
    import pysrt

    items = pysrt.from_string(content, error_handling=pysrt.SubRipFile.ERROR_RAISE)
    return [Cue(i, item.start.ordinal / 1000, item.end.ordinal / 1000, item.text, _strip_markup(item.text))
            for i, item in enumerate(items)]


def _parse_vtt(content: str) -> list[Cue]:
    import webvtt

    # start_in_seconds truncates to whole seconds: use milliseconds.
    return [Cue(i, c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000,
                c.raw_text, _strip_markup(c.raw_text))
            for i, c in enumerate(webvtt.from_string(content).captions)]


# --- cleaning ----------------------------------------------------------------

_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")  # HTML/VTT tags, inline timestamps, ASS overrides
_SOUND = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*")  # [Music] (applause) *laughs*
_NOTES = re.compile(r"[♪♫♩♬#][^♪♫♩♬#]*(?:[♪♫♩♬#]|$)")  # sung lyrics between music notes
_SPEAKER = re.compile(r"^\s*(?:>>+\s*|-\s+)?[A-Z][A-Z0-9 .'-]*[A-Z0-9]\s*:\s+")  # "JOHN:", "SPEAKER 1:"
_CHEVRONS = re.compile(r"^\s*(?:>>+|-)\s*")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def _strip_markup(text: str) -> str:
    return _SPACE.sub(" ", html.unescape(_TAG.sub("", text))).strip()


def clean_text(text: str) -> str:
    """Speakable text of a cue: no markup, sound descriptions, lyrics or speaker labels."""
    lines = []
    for line in html.unescape(_TAG.sub("", text)).splitlines():
        line = _NOTES.sub(" ", _SOUND.sub(" ", line))
        line = _CHEVRONS.sub("", _SPEAKER.sub("", line))
        lines.append(line)
    return _SPACE.sub(" ", " ".join(lines)).strip()


def speakable_words(text: str) -> tuple[str, ...]:
    """Lower-case words the aligner can pronounce; digits spelled out ("42" -> "forty two")."""
    text = re.sub(r"\d+(?:[.,]\d+)*%?", lambda m: f" {_number_words(m.group())} ", text)
    text = text.lower().replace("’", "'").replace("&", " and ")
    return tuple(_WORD.findall(text))


def _number_words(token: str) -> str:
    import inflect

    percent = token.endswith("%")
    digits = token.rstrip("%").replace(",", "")
    words = inflect.engine().number_to_words(digits, andword="").replace("-", " ").replace(",", "")
    return words + (" percent" if percent else "")


def looks_rolling(cues: Sequence[Cue]) -> bool:
    """True for YouTube-style rolling captions: most cues start with the previous cue's last line."""
    pairs = [(a, b) for a, b in zip(cues, cues[1:]) if a.text_raw.strip() and b.text_raw.strip()]
    if len(pairs) < 2:
        return False
    repeats = sum(_strip_markup(b.text_raw.strip().splitlines()[0])
                  == _strip_markup(a.text_raw.strip().splitlines()[-1]) for a, b in pairs)
    return repeats >= len(pairs) / 2


def dedupe_rolling(cues: Iterable[Cue]) -> list[Cue]:
    """Keep only the words each cue adds to the previous one (drops pure repeats)."""
    kept: list[Cue] = []
    previous: list[str] = []
    for cue in cues:
        words = cue.text.split()
        overlap = next((k for k in range(min(len(words), len(previous)), 0, -1)
                        if words[:k] == previous[-k:]), 0)
        new = words[overlap:]
        if new:
            kept.append(replace(cue, text=" ".join(new)))
            previous = words
    return kept


def clip_to_segment(cues: Iterable[Cue], start_s: Seconds, end_s: Seconds | None,
                    max_cut_fraction: float) -> list[Cue]:
    """Cues inside ``[start_s, end_s)`` with times made relative to ``start_s``.

    A cue crossing an edge is shortened; one that loses more than
    ``max_cut_fraction`` of its length is dropped (its words are not in the audio).
    """
    out: list[Cue] = []
    for cue in cues:
        lo, hi = max(cue.start_s, start_s), cue.end_s if end_s is None else min(cue.end_s, end_s)
        if hi <= lo or (cue.duration_s - (hi - lo)) > max_cut_fraction * cue.duration_s:
            continue
        out.append(replace(cue, start_s=lo - start_s, end_s=hi - start_s))
    return out


def prepare_cues(cues: Sequence[Cue], start_s: Seconds = 0.0, end_s: Seconds | None = None,
                 config: CueConfig = CueConfig()) -> list[Cue]:
    """Parsed cues -> cleaned, de-duplicated cues with speakable words, cut to the segment.

    Returns cues numbered from 0, sorted by time, times relative to ``start_s``;
    possibly empty (the caller decides whether that rejects the clip).
    """
    dedupe = looks_rolling(cues) if config.dedupe is None else config.dedupe
    timed = sorted((c for c in cues if c.duration_s >= config.min_duration_s), key=lambda c: c.start_s)
    cleaned = [replace(c, text=clean_text(c.text_raw)) for c in timed]
    if dedupe:
        cleaned = dedupe_rolling(cleaned)
    speakable = [c for c in cleaned if speakable_words(c.text)]
    inside = clip_to_segment(speakable, start_s, end_s, config.max_cut_fraction)
    return [replace(c, index=i) for i, c in enumerate(inside)]


def find_sidecar(media: Path, lang: str = "en") -> Path | None:
    """The subtitle file yt-dlp writes beside ``media``: ``<stem>.<lang>.vtt|srt``, then ``<stem>.vtt|srt``."""
    for name in (f"{media.stem}.{lang}{s}" for s in SUBTITLE_SUFFIXES):
        if (media.parent / name).is_file():
            return media.parent / name
    variants = sorted(media.parent.glob(f"{media.stem}.{lang}-*.*"))  # en-US, en-GB ...
    for path in variants + [media.with_suffix(s) for s in SUBTITLE_SUFFIXES]:
        if path.suffix.lower() in SUBTITLE_SUFFIXES and path.is_file():
            return path
    return None
