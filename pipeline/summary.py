"""What a refresh did, counted from the warehouse tables (so a re-run reports the same)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.align.base import CUE_STATUSES, KEPT_STATUSES
from pipeline.prune import Pruned
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
    waiting_media: int = 0  # clips with subtitles but neither media (a clips row) nor a reject
    pruned: Pruned | None = None  # cached media removed after the run (--prune-downloads)

    def rows(self) -> list[tuple[str, str]]:
        """(what, how many) in reading order: what :meth:`lines` prints and :meth:`markdown` tabulates.
        A rejects reason is indented under the rejected count."""
        out = [("clips in", f"{self.clips_in}"), ("with subtitles", f"{self.subtitled}")]
        if self.waiting:
            out.append(("waiting for subtitles", f"{self.waiting} (source unavailable; tried again next run)"))
        if self.waiting_media:
            out.append(("waiting for media", f"{self.waiting_media} (source unavailable, or a remote source "
                                             "without --download-media; tried again next run)"))
        out += [("aligned", f"{self.aligned}"), ("histograms", f"{self.histograms}"), ("face spans", f"{self.spans}")]
        if self.cues:
            out.append(("cues", ", ".join(f"{n} {status}" for status, n in self.cues.items())
                        + (f"; caption words kept: {self.word_coverage:.1%}" if self.word_coverage is not None
                           else "")))
        out.append(("rejected", f"{self.rejected_clips}"))
        out += [(f"  {reason}", f"{n}") for reason, n in sorted(self.rejected.items())]
        if self.pruned is not None:
            out.append(("downloads removed", f"{self.pruned.files} file(s) of {len(self.pruned.sources)} source(s) "
                                             f"whose clips are all done, {self.pruned.bytes / 1e6:.1f} MB"))
        return out

    def lines(self) -> list[str]:
        """The summary ``talkface refresh`` prints."""
        out = [f"{what}: {n}" for what, n in self.rows()]
        if self.rejected:  # after the last reason
            out.insert(max(i for i, line in enumerate(out) if line.startswith("  ")) + 1, f"  ({REJECTS_HINT})")
        return out

    def markdown(self) -> str:
        """The summary as a markdown table: the refresh flow's artifact in the Prefect UI."""
        rows = "".join(f"| {'&nbsp;&nbsp;' + what.strip() if what.startswith(' ') else what} | {n} |\n"
                       for what, n in self.rows())
        return f"| | |\n|---|---|\n{rows}" + (f"\n{REJECTS_HINT}.\n" if self.rejected else "")


REJECTS_HINT = "`talkface rejects --list` says why, clip by clip; `--retry` has the next refresh try them again"
"""Where to go from the rejects a summary counts."""


def summarize(warehouse: Warehouse, clip_ids: Sequence[str]) -> Summary:
    """Counts over ``clip_ids`` from the warehouse tables (so re-runs report the same)."""
    ids = pa.array(list(clip_ids), pa.string())

    def clips_of(table: str) -> set[str]:
        data = warehouse.read(table, columns=["clip_id"])
        return set(data.filter(pc.is_in(data["clip_id"], value_set=ids))["clip_id"].to_pylist())

    rejects = warehouse.read("rejects")
    rejects = rejects.filter(pc.is_in(rejects["clip_id"], value_set=ids)).to_pylist()
    reasons = Counter(f"{r['stage']}: {r['reason']}" for r in rejects)
    rejected = {r["clip_id"] for r in rejects}
    subtitled = clips_of("subtitles")
    settled = subtitled | {r["clip_id"] for r in rejects if r["stage"] == "subtitles"}
    outcomes = warehouse.read("cue_outcomes", columns=["clip_id", "status", "caption_words", "aligned_words"])
    outcomes = outcomes.filter(pc.is_in(outcomes["clip_id"], value_set=ids)).to_pylist()
    statuses = Counter(o["status"] for o in outcomes)
    caption = sum(o["caption_words"] or 0 for o in outcomes)
    kept = sum(o["aligned_words"] or 0 for o in outcomes if o["status"] in KEPT_STATUSES)
    return Summary(len(clip_ids), len(subtitled), len(clips_of("phone_alignments")),
                   len(clips_of("phoneme_histograms")), dict(reasons), len(rejected),
                   {s: statuses[s] for s in CUE_STATUSES if statuses[s]}, kept / caption if caption else None,
                   len(clips_of("clip_spans")), len(set(clip_ids) - settled),
                   len(subtitled - clips_of("clips") - rejected))

