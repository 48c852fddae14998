"""Phone-boundary accuracy of our forced aligner against public reference alignments.

The references (``benchmarks/references.py``) ship inside PyPI packages and
nobody on this project wrote them: hand-labelled sets (``north_wind``,
``polyglotdb``, ``praatio``) and other aligners' output (``mfa``, ``arctic``).
Each utterance is aligned as one cue spanning the whole audio; hypothesis and
reference phones are mapped to the 39 CMU classes with silence dropped, and the
two label sequences are matched with difflib. Over phones matched with the same
label, boundaries are compared: every matched phone's start, and its end where a
pause or the utterance end follows it in the reference (a silence edge).

Per set it prints: utterances, failures (an exception or no phones), phone
agreement (share of reference phones matched with the same label, over the
utterances that aligned), mean and
median absolute boundary error, share within 10/20/25/50 ms, signed bias
(hypothesis - reference), and the real-time factor per core (CPU seconds of
``align`` / seconds of audio). Where both ``polyglotdb`` and ``mfa`` are scored,
a peer row follows: MFA 3.4.3's own alignment of polyglotdb's clip (it ships
in MFA's tests) against the same hand labels. Then the bias per boundary kind (speech onset
after a pause, internal, speech offset before a pause), what a constant shift
of every hypothesis boundary by d ms would do, and where the first phone of
each utterance starts (an aligner stretching it back to 0 s shows here).

Run: ``.venv/bin/python benchmarks/bench_align_accuracy.py [--set north_wind] [--limit 2]``.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import difflib
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from benchmarks.references import (  # noqa: E402
    REFERENCE_SETS,
    Reference,
    ReferenceUnavailable,
    RefPhone,
    load_references,
    timit_references,
)
from pipeline.align import ALIGNERS, Aligner, Utterance, make_aligner  # noqa: E402
from pipeline.phonemes import to_cmu39  # noqa: E402

SAMPLE_RATE = 16000
PAUSE_S = 0.005  # a gap between reference phones longer than this is a dropped silence
STRETCHED_S = 0.015  # a first phone starting before this was stretched back to the audio start
WITHIN_MS = (10, 20, 25, 50)


class Boundary(NamedTuple):
    """One compared boundary: its kind and hypothesis - reference in seconds."""

    kind: str  # "onset" (after a pause), "internal", "offset" (before a pause)
    error_s: float


@dataclass
class SetScore:
    """Everything measured over one reference set."""

    name: str
    utterances: int = 0
    failures: list[str] = field(default_factory=list)
    ref_phones: int = 0
    matched: int = 0
    boundaries: list[Boundary] = field(default_factory=list)
    first_phone: list[tuple[float, float]] = field(default_factory=list)  # (ref start, hyp start)
    cpu_s: float = 0.0
    audio_s: float = 0.0


def warm_up(aligner: Aligner) -> None:
    """Load what an aligner loads once per process (g2p_en's model, for a word no dictionary has).

    A long-running worker pays this once; timing it into the first utterance
    would make that utterance's real-time factor meaningless.
    """
    aligner.align("warm-up", np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE,
                  [Utterance(0, 0.0, 1.0, ("zorblaxing",))])


def hypothesis(aligner: Aligner, ref: Reference) -> tuple[list[RefPhone], str]:
    """The aligner's phones for the whole utterance (CMU classes, silence dropped) and its cue outcome, if any."""
    utterance = Utterance(0, 0.0, len(ref.audio) / SAMPLE_RATE, ref.words)
    result = aligner.align(ref.utt_id, ref.audio, SAMPLE_RATE, [utterance])
    out = []
    for p in result.phones:
        phone = to_cmu39(p.phone)
        if phone is not None:
            out.append(RefPhone(phone, p.start_s, p.end_s))
    outcome = "; ".join(f"{o.status} {o.reason} ({'/'.join(o.rungs)}): {o.detail}" for o in result.outcomes)
    return out, outcome


def compare(ref: Sequence[RefPhone], hyp: Sequence[RefPhone]) -> tuple[int, list[Boundary]]:
    """Reference phones matched with the same label, and the boundary errors of those matches."""
    matcher = difflib.SequenceMatcher(None, [p.phone for p in ref], [p.phone for p in hyp], autojunk=False)
    matched, out = 0, []
    for i, j, n in matcher.get_matching_blocks():
        for k in range(n):
            r, h = ref[i + k], hyp[j + k]
            matched += 1
            after_pause = i + k == 0 or r.start_s - ref[i + k - 1].end_s > PAUSE_S
            out.append(Boundary("onset" if after_pause else "internal", h.start_s - r.start_s))
            if i + k == len(ref) - 1 or ref[i + k + 1].start_s - r.end_s > PAUSE_S:
                out.append(Boundary("offset", h.end_s - r.end_s))
    return matched, out


def score_set(name: str, refs: Iterable[Reference], aligner: Aligner) -> SetScore:
    score = SetScore(name)
    for ref in refs:
        score.utterances += 1
        score.audio_s += len(ref.audio) / SAMPLE_RATE
        start = time.process_time()
        try:
            hyp, outcome = hypothesis(aligner, ref)
        except Exception as exc:  # noqa: BLE001 - a benchmark counts every failure and goes on
            score.failures.append(f"{ref.utt_id}: {type(exc).__name__}: {exc}")
            continue
        finally:
            score.cpu_s += time.process_time() - start
        if not hyp:
            score.failures.append(f"{ref.utt_id}: no phones ({outcome or 'no outcome'})")
            continue
        matched, boundaries = compare(ref.phones, hyp)
        score.ref_phones += len(ref.phones)
        score.matched += matched
        score.boundaries += boundaries
        score.first_phone.append((ref.phones[0].start_s, hyp[0].start_s))
    return score


# --- reporting -----------------------------------------------------------------------

def _ms(errors: Sequence[float]) -> list[float]:
    return [1000 * e for e in errors]


def summary_row(s: SetScore) -> list[str]:
    errors = _ms([b.error_s for b in s.boundaries])
    absolute = [abs(e) for e in errors]
    rtf = f"{s.cpu_s / s.audio_s:.3f}" if s.audio_s else "-"
    if not errors:
        return [s.name, str(s.utterances), str(len(s.failures)), *["-"] * (5 + len(WITHIN_MS)), rtf]
    within = [f"{100 * sum(a <= w for a in absolute) / len(absolute):.0f}%" for w in WITHIN_MS]
    return [s.name, str(s.utterances), str(len(s.failures)), f"{100 * s.matched / max(s.ref_phones, 1):.0f}%",
            str(len(errors)), f"{statistics.fmean(absolute):.1f}", f"{statistics.median(absolute):.1f}",
            *within, f"{statistics.fmean(errors):+.1f}", rtf]


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A plain table: first column left-aligned, the rest right-aligned."""
    rows = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def kind_rows(scores: Sequence[SetScore]) -> list[list[str]]:
    """Signed bias and mean |error| per boundary kind."""
    rows = []
    for s in scores:
        row = [s.name]
        for kind in ("onset", "internal", "offset"):
            errors = _ms([b.error_s for b in s.boundaries if b.kind == kind])
            row.append(f"{len(errors)}: {statistics.fmean(errors):+.1f} / {statistics.fmean(map(abs, errors)):.1f}"
                       if errors else "-")
        rows.append(row)
    return rows


def shift_rows(scores: Sequence[SetScore], max_ms: int) -> tuple[list[str], list[list[str]]]:
    """Mean |error| (ms) if every hypothesis boundary moved by d ms, and the best d at 1 ms steps."""
    shown = list(range(-max_ms, max_ms + 1, 5))
    header = ["set", *[f"{d:+d}" for d in shown], "best d", "mean |e|", "bias"]
    rows = []
    for s in scores:
        errors = _ms([b.error_s for b in s.boundaries])
        if not errors:
            continue
        mean_at = {d: statistics.fmean(abs(e + d) for e in errors) for d in range(-max_ms, max_ms + 1)}
        best = min(mean_at, key=lambda d: (mean_at[d], abs(d)))
        rows.append([s.name, *[f"{mean_at[d]:.1f}" for d in shown], f"{best:+d}", f"{mean_at[best]:.1f}",
                     f"{statistics.fmean(errors) + best:+.1f}"])
    return header, rows


def first_phone_rows(scores: Sequence[SetScore]) -> list[list[str]]:
    """Where the first phone starts: reference vs hypothesis, and how often it was stretched to the audio start."""
    rows = []
    for s in scores:
        if not s.first_phone:
            continue
        led = [(r, h) for r, h in s.first_phone if r > 0.05]  # utterances that start with silence
        errors = _ms([h - r for r, h in led])
        rows.append([s.name, str(len(s.first_phone)), str(len(led)),
                     f"{statistics.fmean(errors):+.1f}" if errors else "-",
                     f"{min(errors):+.1f}" if errors else "-",
                     str(sum(h < STRETCHED_S for _, h in led))])
    return rows


def peer_score(hand_refs: Sequence[Reference], peer_refs: Sequence[Reference]) -> SetScore | None:
    """MFA 3.4.3's own alignment of ``acoustic_corpus`` (shipped in its tests) scored against polyglotdb's hand labels.

    The same audio, the same hand labels and the same scoring as our
    ``polyglotdb`` row: a peer aligner's figure measured side by side, not
    quoted from a paper (MFA's 17 ms is on TIMIT's read speech).
    """
    hand = next(iter(hand_refs), None)
    peer = next((r for r in peer_refs if hand is not None and r.utt_id == hand.utt_id), None)
    if peer is None:
        return None
    score = SetScore("MFA 3.4.3 on polyglotdb", utterances=1, ref_phones=len(hand.phones))
    score.matched, score.boundaries = compare(hand.phones, peer.phones)
    return score


def pooled(name: str, scores: Sequence[SetScore]) -> SetScore:
    out = SetScore(name)
    for s in scores:
        out.utterances += s.utterances
        out.failures += s.failures
        out.ref_phones += s.ref_phones
        out.matched += s.matched
        out.boundaries += s.boundaries
        out.first_phone += s.first_phone
        out.cpu_s += s.cpu_s
        out.audio_s += s.audio_s
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="sets: " + "; ".join(f"{s.name} ({s.labelled_by}; {s.source}; {s.licence})"
                                                                 for s in REFERENCE_SETS.values()))
    parser.add_argument("--set", dest="sets", action="append", choices=[*REFERENCE_SETS, "timit"],
                        help="reference set (repeatable; default: every package-shipped set)")
    parser.add_argument("--limit", type=int, default=None, help="at most N utterances per set")
    parser.add_argument("--aligner", default="pocketsphinx", choices=ALIGNERS)
    parser.add_argument("--timit-dir", type=Path, default=None,
                        help="a local LDC TIMIT copy (for --set timit; no package ships its audio)")
    parser.add_argument("--shift-ms", type=int, default=20, help="constant shifts tried: -N..+N ms")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="where archives are kept (default: $TALKFACE_CACHE/align-references or .pytest_cache)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each failure")
    args = parser.parse_args()
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    names = args.sets or list(REFERENCE_SETS)
    if "timit" in names and (args.timit_dir is None or not args.timit_dir.is_dir()):
        parser.error("--set timit needs --timit-dir pointing at a TIMIT folder")

    aligner = make_aligner(args.aligner)
    warm_up(aligner)
    scores: list[SetScore] = []
    loaded: dict[str, list[Reference]] = {}
    for name in names:
        refs = timit_references(args.timit_dir) if name == "timit" else load_references(name, args.cache_dir)
        try:
            chosen = [r for _, r in zip(range(args.limit or sys.maxsize), refs)]
        except ReferenceUnavailable as exc:
            print(f"skipped {name}: {exc}", file=sys.stderr)
            continue
        loaded[name] = chosen
        scores.append(score_set(name, chosen, aligner))
    hand = [s for s in scores if s.name == "timit" or REFERENCE_SETS[s.name].labelled_by.startswith("hand")]
    if len(hand) > 1:
        scores.append(pooled("all hand", hand))
    peers = [p for p in [peer_score(loaded.get("polyglotdb", []), loaded.get("mfa", []))] if p is not None]

    print(f"{aligner.name} {aligner.version}: boundaries of same-label matched phones, ms; RTF per core\n")
    header = ["set", "utts", "fail", "agree", "bounds", "mean", "median", *[f"<={w}" for w in WITHIN_MS], "bias", "RTF"]
    print(table(header, map(summary_row, scores)))
    if peers:
        print("\na peer on the same hand labels: MFA's own alignment of polyglotdb's clip (shipped in its tests)\n")
        print(table(header, map(summary_row, [s for s in scores if s.name == "polyglotdb"] + peers)))
    print("\nbias / mean |error| per boundary kind (count: signed / absolute, ms)\n")
    print(table(["set", "onset after pause", "internal", "offset before pause"], kind_rows(scores)))
    print("\nmean |error| (ms) with every hypothesis boundary shifted by d ms; bias after the best d\n")
    print(table(*shift_rows(scores, args.shift_ms)))
    print("\nfirst phone: utterances, those starting after silence (ref > 50 ms), hyp - ref start (ms), "
          f"and how many start before {1000 * STRETCHED_S:.0f} ms (stretched to the audio start)\n")
    print(table(["set", "utts", "lead sil", "mean", "min", "stretched"], first_phone_rows(scores)))
    for s in scores[: len(scores) - (len(hand) > 1)]:
        for failure in s.failures if args.verbose else s.failures[:3]:
            print(f"failure [{s.name}] {failure}", file=sys.stderr)


if __name__ == "__main__":
    main()
