"""Per-clip ingest stages: each turns one clip into table rows or a reject.

A stage never stops a run for one bad clip: anything wrong with the clip's
input (media, subtitles, alignment) becomes a :class:`Reject` naming the stage
and a stable reason. Stages run in order, each over the clips that still need
it (:func:`pending`), and :func:`run_batch` writes a batch's rows and rejects
in atomic commits, so an interrupted run loses at most the batch in flight.

Stage ``subtitles`` -> ``subtitles`` rows (cleaned cues of the clip's segment)
Stage ``clips``     -> one ``clips`` row (probed media; remote clips wait for media)
Stage ``align``     -> ``phone_alignments`` rows (39 CMU classes) of the cues kept, and a
                       ``cue_outcomes`` row per cue (kept or not, why, how well it matched)
Stage ``histograms``-> one ``phoneme_histograms`` row
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.align import AlignedPhone, Aligner, AlignmentError, CueOutcome, Utterance
from pipeline.align.base import CUE_STATUSES, KEPT_STATUSES, ClipAlignment, ClipAudio, align_clips
from pipeline.audio import SAMPLE_RATE, MediaError, decode_audio, probe_media
from pipeline.corpus import ClipSpec
from pipeline.phonemes import histogram, to_cmu39
from pipeline.subtitle_fetch import FetchConfig, FetchError, fetch_subtitles
from pipeline.subtitles import CueConfig, SubtitleError, prepare_cues, read_cues, speakable_words
from warehouse.store import Warehouse
from warehouse.tables import table_spec

log = logging.getLogger(__name__)

STAGES: dict[str, str] = {
    "subtitles": "subtitles",
    "clips": "clips",
    "align": "phone_alignments",
    "histograms": "phoneme_histograms",
}
"""Stage name -> the table it writes, in run order."""


@dataclass(frozen=True)
class Reject:
    """A clip a stage dropped; a ``rejects`` row."""

    clip_id: str
    stage: str
    reason: str  # short and stable: bad_media, no_audio, no_subtitles, cue_past_end, ...
    detail: str

    def to_row(self, at: datetime) -> dict[str, object]:
        return {"clip_id": self.clip_id, "stage": self.stage, "reason": self.reason,
                "detail": self.detail, "at": at}


@dataclass(frozen=True)
class IngestConfig:
    """Settings of every ingest stage; built by the CLI."""

    cache_dir: Path = Path("talkface-cache")  # fetched subtitles (and media) per source
    fetch: FetchConfig = FetchConfig()
    cues: CueConfig = CueConfig()
    batch_size: int = 25  # clips per atomic write
    min_coverage: float = 0.5  # reject a clip whose kept cues hold less of its caption words
    cue_pad_s: float = 0.5  # the aligner searches this far beyond a cue's caption times


@dataclass
class StageOutput:
    """What one stage produced for a batch of clips."""

    stage: str
    clip_ids: list[str] = field(default_factory=list)  # clips that produced rows
    rows: list[dict[str, object]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    cue_outcomes: list[dict[str, object]] = field(default_factory=list)  # align: every processed clip's cues


# --- stages (pure per clip: rows or a Reject) --------------------------------

def subtitle_rows(clip: ClipSpec, config: IngestConfig) -> list[dict[str, object]] | Reject:
    """Cleaned cues of the clip's segment: from its sidecar file, else fetched."""
    if clip.subtitles is not None:
        path, kind, lang = clip.subtitles, "sidecar", config.fetch.lang
    elif clip.is_remote:
        try:
            fetched = fetch_subtitles(clip.source, _source_key(clip.source), config.cache_dir / "subtitles",
                                      config.fetch)
        except FetchError as exc:
            return Reject(clip.clip_id, "subtitles", exc.reason, str(exc))
        path, kind, lang = fetched.path, fetched.kind, fetched.lang
    else:
        return Reject(clip.clip_id, "subtitles", "no_subtitles", f"{clip.media}: no sidecar subtitle file")
    try:
        cues = prepare_cues(read_cues(path), clip.start_s, clip.end_s, config.cues)
    except SubtitleError as exc:
        reason = "subtitles_not_utf8" if "not UTF-8" in str(exc) else "bad_subtitles"
        return Reject(clip.clip_id, "subtitles", reason, str(exc))
    if not cues:
        return Reject(clip.clip_id, "subtitles", "no_speakable_cues",
                      f"{path}: no cue with speakable words in {clip.start_s}-{clip.end_s}s")
    return [cue.to_row(clip.clip_id, kind, lang) for cue in cues]


def clip_row(clip: ClipSpec, config: IngestConfig) -> dict[str, object] | Reject | None:
    """The ``clips`` row of a clip with local media; ``None`` while a remote clip has none."""
    media = clip.media or _fetched_media(clip, config)
    if media is None:
        return None
    try:
        info = probe_media(media)
    except MediaError as exc:
        return Reject(clip.clip_id, "clips", "bad_media", str(exc))
    return {"clip_id": clip.clip_id, "speaker_id": clip.speaker_id, "source": clip.source,
            "video_uri": str(media), "start_s": clip.start_s,
            "end_s": clip.end_s if clip.end_s is not None else info.duration_s,
            "fps": info.fps, "width": info.width, "height": info.height, "has_audio": info.has_audio}


@dataclass(frozen=True)
class AlignedRows:
    """The align stage's result for one clip: phone rows of kept cues, every cue's outcome, or a reject."""

    phones: list[dict[str, object]]
    outcomes: list[dict[str, object]]  # cue_outcomes rows, written even when the clip is rejected
    reject: Reject | None = None


def phone_rows(clip: dict[str, object], cues: Sequence[dict[str, object]], aligner: Aligner,
               min_coverage: float = 0.5) -> AlignedRows | Reject:
    """Aligned phones of one clip's kept cues (:func:`prepare_alignment`, align, :func:`alignment_rows`)."""
    prepared = prepare_alignment(clip, cues)
    if isinstance(prepared, Reject):
        return prepared
    result = align_clips(aligner, [prepared])[0]
    return alignment_rows(prepared, cues, result, aligner, min_coverage)


def prepare_alignment(clip: dict[str, object], cues: Sequence[dict[str, object]]) -> ClipAudio | Reject:
    """The clip's 16 kHz audio and its cues inside it as utterances, or why there is nothing to align.

    Args:
        clip: the clip's ``clips`` row.
        cues: its ``subtitles`` rows.
    """
    clip_id = str(clip["clip_id"])
    if not clip["has_audio"]:
        return Reject(clip_id, "align", "no_audio", f"{clip['video_uri']}: no audio stream")
    try:
        audio = decode_audio(clip["video_uri"], SAMPLE_RATE, clip["start_s"], clip["end_s"])
    except MediaError as exc:
        return Reject(clip_id, "align", "bad_media", str(exc))
    length_s = len(audio) / SAMPLE_RATE
    inside = [c for c in cues if c["start_s"] < length_s - 0.05]
    if not inside:
        return Reject(clip_id, "align", "cue_past_end",
                      f"every cue starts after the audio ends ({length_s:.2f} s), first: cue {cues[0]['cue']} "
                      f"{cues[0]['start_s']}-{cues[0]['end_s']} s")
    return ClipAudio(clip_id, audio, tuple(
        Utterance(int(c["cue"]), float(c["start_s"]), min(float(c["end_s"]), length_s),
                  speakable_words(str(c["text"]))) for c in inside))


def alignment_rows(clip: ClipAudio, cues: Sequence[dict[str, object]], result: ClipAlignment | AlignmentError,
                   aligner: Aligner, min_coverage: float) -> AlignedRows | Reject:
    """Phone rows of the kept cues and every cue's outcome; a ``low_coverage`` reject below ``min_coverage``.

    A cue that fails or does not match its audio costs that cue only; the clip
    is rejected when its kept cues hold less than ``min_coverage`` of its caption
    words (the detail gives the figure and the cues lost).
    """
    if isinstance(result, AlignmentError):
        return Reject(clip.clip_id, "align", "alignment_failed", str(result))
    length_s = len(clip.audio) / SAMPLE_RATE
    aligned = {u.cue for u in clip.utterances}
    result.outcomes += [_past_end(c, length_s) for c in cues if int(c["cue"]) not in aligned]
    outcomes = [dict(o.to_row(clip.clip_id), aligner=aligner.name)
                for o in sorted(result.outcomes, key=lambda o: o.cue)]
    phones = _phone_rows(clip.clip_id, result.phones, aligner)
    if result.coverage < min_coverage or not phones:
        lost = "; ".join(o.detail for o in result.outcomes if not o.kept and o.detail)
        detail = (f"aligned {result.aligned_words} of {result.caption_words} caption words "
                  f"({result.coverage:.0%}), below the {min_coverage:.0%} minimum" + (f"; {lost}" if lost else ""))
        return AlignedRows([], outcomes, Reject(clip.clip_id, "align", "low_coverage", detail))
    return AlignedRows(phones, outcomes)


def _past_end(cue: dict[str, object], length_s: float) -> CueOutcome:
    words = len(speakable_words(str(cue["text"])))
    return CueOutcome(int(cue["cue"]), "failed", "past_end",
                      f"cue {cue['cue']} ({cue['start_s']}-{cue['end_s']} s): starts after the audio ends "
                      f"({length_s:.2f} s)", words, 0, None, float(cue["start_s"]), float(cue["end_s"]))


def _phone_rows(clip_id: str, phones: Sequence[AlignedPhone], aligner: Aligner) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    position: Counter[int] = Counter()
    for p in phones:
        label = to_cmu39(p.phone)
        if label is None:
            continue
        rows.append({"clip_id": clip_id, "cue": p.cue, "position": position[p.cue], "word": p.word,
                     "phone": label, "start_s": round(p.start_s, 4), "end_s": round(p.end_s, 4),
                     "aligner": aligner.name, "aligner_version": aligner.version,
                     "score": None if p.score is None else round(p.score, 2)})
        position[p.cue] += 1
    return rows


def histogram_row(clip_id: str, phones: Sequence[dict[str, object]],
                  outcomes: Sequence[dict[str, object]] = ()) -> dict[str, object]:
    """The ``phoneme_histograms`` row of a clip's ``phone_alignments`` rows (the phones of kept cues).

    ``outcomes`` (its ``cue_outcomes`` rows) give the coverage: the share of the
    clip's caption words that the counted phones come from.
    """
    row = histogram(clip_id, ((p["phone"], p["start_s"], p["end_s"]) for p in phones)).to_row()
    caption = sum(int(o["caption_words"]) for o in outcomes)
    aligned = sum(int(o["aligned_words"]) for o in outcomes if o["status"] in KEPT_STATUSES)
    return {**row, "caption_words": caption or None, "aligned_words": aligned if caption else None,
            "coverage": round(aligned / caption, 4) if caption else None}


# --- batches over the warehouse ----------------------------------------------

def pending(warehouse: Warehouse, stage: str, clip_ids: Sequence[str]) -> list[str]:
    """Clips of ``clip_ids`` that ``stage`` has neither written nor rejected, in order."""
    done = set(warehouse.read(STAGES[stage], columns=["clip_id"])["clip_id"].to_pylist())
    rejects = warehouse.read("rejects", columns=["clip_id", "stage"])
    done |= set(rejects.filter(pc.equal(rejects["stage"], stage))["clip_id"].to_pylist())
    return [c for c in clip_ids if c not in done]


def _rows_by_clip(warehouse: Warehouse, table: str, clip_ids: Sequence[str]) -> dict[str, list[dict]]:
    data = warehouse.read_clips(table, clip_ids)
    grouped: dict[str, list[dict]] = {c: [] for c in clip_ids}
    for row in data.to_pylist():
        grouped[row["clip_id"]].append(row)
    return grouped


def process_batch(stage: str, clips: Sequence[ClipSpec], warehouse: Warehouse, config: IngestConfig,
                  aligner: Aligner | None = None) -> StageOutput:
    """Run ``stage`` on ``clips`` (reading earlier stages' rows); nothing is written."""
    output = StageOutput(stage)
    ids = [c.clip_id for c in clips]
    inputs: dict[str, list[dict]] = {}
    if stage == "align":
        inputs = _rows_by_clip(warehouse, "subtitles", ids)
        clip_rows = {c: rows[0] for c, rows in _rows_by_clip(warehouse, "clips", ids).items() if rows}
        aligned = _align_batch([c for c in ids if c in clip_rows and inputs[c]], clip_rows, inputs, aligner,
                               config.min_coverage)
    elif stage == "histograms":
        inputs = _rows_by_clip(warehouse, "phone_alignments", ids)
        outcomes = _rows_by_clip(warehouse, "cue_outcomes", ids)
    for clip in clips:
        result: list[dict[str, object]] | dict[str, object] | Reject | None
        if stage == "subtitles":
            result = subtitle_rows(clip, config)
        elif stage == "clips":
            result = clip_row(clip, config)
        elif stage == "align":
            if clip.clip_id not in clip_rows or not inputs[clip.clip_id]:
                continue  # waits for its media or subtitles (or was rejected by them)
            result = aligned[clip.clip_id]
            if isinstance(result, AlignedRows):
                output.cue_outcomes += result.outcomes
                result = result.reject or result.phones
        elif stage == "histograms":
            result = (histogram_row(clip.clip_id, inputs[clip.clip_id], outcomes[clip.clip_id])
                      if inputs[clip.clip_id] else None)
        else:
            raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
        if isinstance(result, Reject):
            log.info("reject %s at %s: %s (%s)", result.clip_id, stage, result.reason, result.detail)
            output.rejects.append(result)
        elif result is not None:
            output.clip_ids.append(clip.clip_id)
            output.rows.extend(result if isinstance(result, list) else [result])
    return output


def _align_batch(ids: Sequence[str], clip_rows: dict[str, dict], cues: dict[str, list[dict]],
                 aligner: Aligner | None, min_coverage: float) -> dict[str, AlignedRows | Reject]:
    """The align stage over a batch: audio prepared per clip, aligned in one call where the backend can."""
    if ids and aligner is None:
        raise ValueError("the align stage needs an aligner")
    prepared = {c: prepare_alignment(clip_rows[c], cues[c]) for c in ids}
    ready = [p for p in prepared.values() if isinstance(p, ClipAudio)]
    results = dict(zip([p.clip_id for p in ready], align_clips(aligner, ready), strict=True)) if ready else {}
    return {c: p if isinstance(p, Reject) else alignment_rows(p, cues[c], results[c], aligner, min_coverage)
            for c, p in prepared.items()}


def write_output(warehouse: Warehouse, output: StageOutput) -> None:
    """Write a batch: its cue outcomes, the stage's rows (replacing those clips' rows), then its rejects.

    The stage's own table marks a clip done (:func:`pending`), so it is written
    after the cue outcomes: a run killed in between redoes the clip, and the
    replace makes the redo land once.
    """
    if output.cue_outcomes:
        warehouse.replace_clips("cue_outcomes",
                                pa.Table.from_pylist(output.cue_outcomes, schema=table_spec("cue_outcomes").schema),
                                {str(r["clip_id"]) for r in output.cue_outcomes})
    table = STAGES[output.stage]
    spec = table_spec(table)
    if output.clip_ids:
        data = pa.Table.from_pylist(output.rows, schema=spec.schema)
        if spec.key == ("clip_id",):
            warehouse.upsert(table, data)
        else:
            warehouse.replace_clips(table, data, output.clip_ids)
    if output.rejects:
        at = datetime.now(UTC)
        warehouse.upsert("rejects", pa.Table.from_pylist([r.to_row(at) for r in output.rejects],
                                                         schema=table_spec("rejects").schema))


def run_batch(stage: str, clips: Sequence[ClipSpec], warehouse: Warehouse, config: IngestConfig,
              aligner: Aligner | None = None) -> StageOutput:
    """:func:`process_batch` then :func:`write_output`; the unit a flow task runs."""
    output = process_batch(stage, clips, warehouse, config, aligner)
    write_output(warehouse, output)
    return output


def _source_key(source: str) -> str:
    from pipeline.corpus import safe_id

    return safe_id(source.rstrip("/").rsplit("/", 1)[-1].removesuffix(".info.json"))[:120]


def _fetched_media(clip: ClipSpec, config: IngestConfig) -> Path | None:
    if not config.fetch.download_media:
        return None
    try:
        fetched = fetch_subtitles(clip.source, _source_key(clip.source), config.cache_dir / "subtitles",
                                  config.fetch)
    except FetchError:
        return None  # already rejected by the subtitles stage
    return fetched.media_path


@dataclass(frozen=True)
class Summary:
    """Outcome of a refresh over a set of clips."""

    clips_in: int
    subtitled: int
    aligned: int
    histograms: int
    rejected: dict[str, int]  # "stage: reason" -> clips
    cues: dict[str, int] = field(default_factory=dict)  # cue status -> cues
    word_coverage: float | None = None  # caption words aligned in kept cues / caption words

    def lines(self) -> list[str]:
        out = [f"clips in: {self.clips_in}", f"with subtitles: {self.subtitled}",
               f"aligned: {self.aligned}", f"histograms: {self.histograms}"]
        if self.cues:
            out.append("cues: " + ", ".join(f"{n} {status}" for status, n in self.cues.items())
                       + (f"; caption words kept: {self.word_coverage:.1%}" if self.word_coverage is not None else ""))
        out.append(f"rejected: {sum(self.rejected.values())}")
        out += [f"  {reason}: {n}" for reason, n in sorted(self.rejected.items())]
        return out


def summarize(warehouse: Warehouse, clip_ids: Sequence[str]) -> Summary:
    """Counts over ``clip_ids`` from the warehouse tables (so re-runs report the same)."""
    ids = pa.array(list(clip_ids), pa.string())

    def count(table: str) -> int:
        data = warehouse.read(table, columns=["clip_id"])
        return len(set(data.filter(pc.is_in(data["clip_id"], value_set=ids))["clip_id"].to_pylist()))

    rejects = warehouse.read("rejects")
    rejects = rejects.filter(pc.is_in(rejects["clip_id"], value_set=ids))
    reasons = Counter(f"{r['stage']}: {r['reason']}" for r in rejects.to_pylist())
    outcomes = warehouse.read("cue_outcomes", columns=["clip_id", "status", "caption_words", "aligned_words"])
    outcomes = outcomes.filter(pc.is_in(outcomes["clip_id"], value_set=ids)).to_pylist()
    statuses = Counter(o["status"] for o in outcomes)
    caption = sum(o["caption_words"] or 0 for o in outcomes)
    kept = sum(o["aligned_words"] or 0 for o in outcomes if o["status"] in KEPT_STATUSES)
    return Summary(len(clip_ids), count("subtitles"), count("phone_alignments"),
                   count("phoneme_histograms"), dict(reasons),
                   {s: statuses[s] for s in CUE_STATUSES if statuses[s]}, kept / caption if caption else None)

