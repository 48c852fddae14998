"""Every warehouse table: its Arrow schema and its key, in one place.

Stages build ``pyarrow.Table`` objects with these schemas and hand them to
:class:`warehouse.store.Warehouse`, which upserts them by key. A key is the
set of columns that identifies one row; re-running a stage on the same clip
produces the same keys, so it updates rows instead of duplicating them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TableSpec:
    """A logical table: name, Arrow schema and primary key columns."""

    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    doc: str

    def empty(self) -> pa.Table:
        """A table with no rows and this schema."""
        return self.schema.empty_table()


def _spec(name: str, key: tuple[str, ...], doc: str, *fields: pa.Field) -> TableSpec:
    return TableSpec(name=name, schema=pa.schema(list(fields)), key=key, doc=doc)


def _f(name: str, type_: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


CLIPS = _spec(
    "clips",
    ("clip_id",),
    "One row per clip: where its media is and what it holds.",
    _f("clip_id", pa.string(), False),
    _f("speaker_id", pa.string()),
    _f("source", pa.string()),  # YouTube id, URL or path the clip came from
    _f("video_uri", pa.string()),  # media file the stages decode
    _f("start_s", pa.float64()),  # segment inside the source, seconds
    _f("end_s", pa.float64()),
    _f("fps", pa.float64()),
    _f("width", pa.int32()),
    _f("height", pa.int32()),
    _f("has_audio", pa.bool_()),
)

SUBTITLES = _spec(
    "subtitles",
    ("clip_id", "cue"),
    "Cleaned subtitle cues, times relative to the clip start.",
    _f("clip_id", pa.string(), False),
    _f("cue", pa.int32(), False),  # 0-based cue index within the clip
    _f("start_s", pa.float64()),
    _f("end_s", pa.float64()),
    _f("text_raw", pa.string()),
    _f("text", pa.string()),
    _f("kind", pa.string()),  # manual | auto | sidecar
    _f("lang", pa.string()),
)

PHONE_ALIGNMENTS = _spec(
    "phone_alignments",
    ("clip_id", "cue", "position"),
    "Force-aligned phones in the 39 CMU classes, times relative to the clip start.",
    _f("clip_id", pa.string(), False),
    _f("cue", pa.int32(), False),
    _f("position", pa.int32(), False),  # 0-based phone index within the cue
    _f("word", pa.string()),
    _f("phone", pa.string()),  # one of warehouse.phones.PHONES
    _f("start_s", pa.float64()),
    _f("end_s", pa.float64()),
    _f("aligner", pa.string()),
    _f("aligner_version", pa.string()),
    _f("score", pa.float64()),  # acoustic score per frame (aligner units, higher is better; null: none)
)

CUE_OUTCOMES = _spec(
    "cue_outcomes",
    ("clip_id", "cue"),
    "What alignment made of every subtitle cue: kept or not, why, and how well it matched.",
    _f("clip_id", pa.string(), False),
    _f("cue", pa.int32(), False),
    _f("status", pa.string()),  # aligned | partial | mismatch | failed (pipeline.align.base.CUE_STATUSES)
    _f("reason", pa.string()),  # "" when aligned; no_match, low_score, words_skipped, ...
    _f("detail", pa.string()),  # for a person, naming the cue and its times
    _f("caption_words", pa.int32()),
    _f("aligned_words", pa.int32()),
    _f("score", pa.float64()),  # mean acoustic score per frame of the cue's words
    _f("window_start_s", pa.float64()),  # the audio finally searched, clip time
    _f("window_end_s", pa.float64()),
    _f("rungs", pa.list_(pa.string())),  # recovery rungs tried, in order
    _f("aligner", pa.string()),
)

PHONEME_HISTOGRAMS = _spec(
    "phoneme_histograms",
    ("clip_id",),
    "Per-clip phone counts and durations, 39 entries in warehouse.phones.PHONES order.",
    _f("clip_id", pa.string(), False),
    _f("counts", pa.list_(pa.int64())),
    _f("seconds", pa.list_(pa.float64())),
    _f("n_phones", pa.int64()),
    _f("caption_words", pa.int64()),  # words of the clip's captions
    _f("aligned_words", pa.int64()),  # of those, aligned in kept cues (the phones counted here)
    _f("coverage", pa.float64()),  # aligned_words / caption_words
)

POSES = _spec(
    "poses",
    ("clip_id", "frame"),
    "Per-frame face tracking and head pose in degrees.",
    _f("clip_id", pa.string(), False),
    _f("frame", pa.int32(), False),
    _f("face_found", pa.bool_()),
    _f("n_faces", pa.int32()),
    _f("yaw", pa.float64()),
    _f("pitch", pa.float64()),
    _f("roll", pa.float64()),
    _f("bbox", pa.list_(pa.float32())),  # x0, y0, x1, y1 in pixels
    _f("interpolated", pa.bool_()),  # between two keyframes (--landmark-every), not measured; null: written before
)

CLIP_SPANS = _spec(
    "clip_spans",
    ("clip_id",),
    "Longest consecutive run of valid frames; end_frame is exclusive.",
    _f("clip_id", pa.string(), False),
    _f("start_frame", pa.int32()),
    _f("end_frame", pa.int32()),
    _f("n_frames", pa.int32()),
)

FEATURE_SHARDS = _spec(
    "feature_shards",
    ("clip_id",),
    "Training features per clip: one compressed .npz per clip holding `frames` "
    "uint8 (T, 112, 112, 3) RGB face crops and `mfcc` float32 (T, 12, 35).",
    _f("clip_id", pa.string(), False),
    _f("speaker_id", pa.string()),
    _f("start_frame", pa.int32()),
    _f("end_frame", pa.int32()),
    _f("n_frames", pa.int32()),
    _f("fps", pa.float64()),
    _f("shard_uri", pa.string()),
)

REJECTS = _spec(
    "rejects",
    ("clip_id", "stage"),
    "Every clip a stage dropped, and why; re-running a stage updates its row.",
    _f("clip_id", pa.string(), False),
    _f("stage", pa.string(), False),
    _f("reason", pa.string()),  # short, stable machine-readable reason
    _f("detail", pa.string()),  # human-readable detail (error text, values)
    _f("at", UTC_TIMESTAMP),
)

DISTANCES_TYPE = pa.struct(
    [_f(name, pa.float64()) for name in ("kl", "tv", "l2", "js", "chi2")]
)

SELECTIONS = _spec(
    "selections",
    ("selection_id",),
    "One row per selection run: parameters, result and the table versions it read.",
    _f("selection_id", pa.string(), False),
    _f("created_at", UTC_TIMESTAMP),
    _f("method", pa.string()),
    _f("distance", pa.string()),
    _f("value", pa.float64()),
    _f("n", pa.int64()),
    _f("nmin", pa.int64()),
    _f("nmax", pa.int64()),
    _f("k", pa.int64()),
    _f("seed", pa.int64()),
    _f("n_candidates", pa.int64()),
    _f("distances", DISTANCES_TYPE),  # every named distance of the selected set
    _f("lower_bounds", DISTANCES_TYPE),  # bounds on the best achievable distance
    _f("input_versions", pa.map_(pa.string(), pa.int64())),
)

SELECTION_MEMBERS = _spec(
    "selection_members",
    ("selection_id", "clip_id"),
    "The clips of each selection with their 0-based rank.",
    _f("selection_id", pa.string(), False),
    _f("clip_id", pa.string(), False),
    _f("rank", pa.int64()),
)

SELECTION_ANNOUNCEMENTS = _spec(
    "selection_announcements",
    ("selection_id",),
    "Selections whose announcement (the event training waits for) the Prefect API holds; written after it does.",
    _f("selection_id", pa.string(), False),
    _f("event_id", pa.string()),  # the event's id, one per selection and warehouse (a repeat is the same event)
    _f("announced_at", UTC_TIMESTAMP),
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        CLIPS,
        SUBTITLES,
        PHONE_ALIGNMENTS,
        CUE_OUTCOMES,
        PHONEME_HISTOGRAMS,
        POSES,
        CLIP_SPANS,
        FEATURE_SHARDS,
        REJECTS,
        SELECTIONS,
        SELECTION_MEMBERS,
        SELECTION_ANNOUNCEMENTS,
    )
}


def table_spec(name: str) -> TableSpec:
    """The spec of table ``name``; raises ``ValueError`` naming the known tables."""
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown table {name!r}; known: {', '.join(TABLES)}") from None
