"""What a refresh did, counted from the warehouse tables (so a re-run reports the same)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.align.base import CUE_STATUSES, KEPT_STATUSES
from pipeline.ingest import Pruned
from warehouse.store import Warehouse


@dataclass(frozen=True)
class Summary:
    """Outcome of a refresh over a set of clips."""

    clips_in: int
    subtitled: int
    aligned: int
    histograms: int
    rejected: dict[str, int]  # "stage: reason" -> clips
    rejected_clips: int  # clips with at least one reject (a clip may be rejected by two stages)
    cues: dict[str, int] = field(default_factory=dict)  # cue status -> cues
    word_coverage: float | None = None  # caption words aligned in kept cues / caption words
    spans: int = 0  # clips with a valid face span and a feature shard
    waiting: int = 0  # clips with neither subtitles nor a subtitles reject: their source was unavailable
    pruned: Pruned | None = None  # downloads removed after the run (--prune-downloads)

    def lines(self) -> list[str]:
        out = [f"clips in: {self.clips_in}", f"with subtitles: {self.subtitled}"]
        if self.waiting:
            out.append(f"waiting for subtitles: {self.waiting} (source unavailable; tried again next run)")
        out += [f"aligned: {self.aligned}", f"histograms: {self.histograms}", f"face spans: {self.spans}"]
        if self.cues:
            out.append("cues: " + ", ".join(f"{n} {status}" for status, n in self.cues.items())
                       + (f"; caption words kept: {self.word_coverage:.1%}" if self.word_coverage is not None else ""))
        out.append(f"rejected: {self.rejected_clips}")
        out += [f"  {reason}: {n}" for reason, n in sorted(self.rejected.items())]
        if self.rejected:
            out.append("  (`talkface rejects --list` says why, clip by clip; "
                       "`--retry` has the next refresh try them again)")
        if self.pruned is not None:
            out.append(f"downloads removed: {self.pruned.files} file(s) of {self.pruned.sources} source(s) whose "
                       f"clips are all done, {self.pruned.bytes / 1e6:.1f} MB")
        return out


def summarize(warehouse: Warehouse, clip_ids: Sequence[str]) -> Summary:
    """Counts over ``clip_ids`` from the warehouse tables (so re-runs report the same)."""
    ids = pa.array(list(clip_ids), pa.string())

    def clips_of(table: str) -> set[str]:
        data = warehouse.read(table, columns=["clip_id"])
        return set(data.filter(pc.is_in(data["clip_id"], value_set=ids))["clip_id"].to_pylist())

    rejects = warehouse.read("rejects")
    rejects = rejects.filter(pc.is_in(rejects["clip_id"], value_set=ids)).to_pylist()
    reasons = Counter(f"{r['stage']}: {r['reason']}" for r in rejects)
    subtitled = clips_of("subtitles")
    settled = subtitled | {r["clip_id"] for r in rejects if r["stage"] == "subtitles"}
    outcomes = warehouse.read("cue_outcomes", columns=["clip_id", "status", "caption_words", "aligned_words"])
    outcomes = outcomes.filter(pc.is_in(outcomes["clip_id"], value_set=ids)).to_pylist()
    statuses = Counter(o["status"] for o in outcomes)
    caption = sum(o["caption_words"] or 0 for o in outcomes)
    kept = sum(o["aligned_words"] or 0 for o in outcomes if o["status"] in KEPT_STATUSES)
    return Summary(len(clip_ids), len(subtitled), len(clips_of("phone_alignments")),
                   len(clips_of("phoneme_histograms")), dict(reasons), len({r["clip_id"] for r in rejects}),
                   {s: statuses[s] for s in CUE_STATUSES if statuses[s]}, kept / caption if caption else None,
                   len(clips_of("clip_spans")), len(set(clip_ids) - settled))

