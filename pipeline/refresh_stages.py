"""The refresh's stages, in run order, as :class:`pipeline.stage.Stage` records.

================  =======================================  ==========================================
stage             reads per clip                           writes (the last marks the clip done)
================  =======================================  ==========================================
``subtitles``     its corpus entry                         ``subtitles``
``clips``         its corpus entry                         ``clips``
``align``         ``clips``, ``subtitles``                 ``cue_outcomes``, ``phone_alignments``
``histograms``    ``phone_alignments``, ``cue_outcomes``   ``phoneme_histograms``
``faces``         ``clips``, ``phoneme_histograms``        ``poses``, ``feature_shards``, ``clip_spans``
================  =======================================  ==========================================

Each compute function takes the batch's records and one :class:`RefreshSettings`
(plain values: picklable for a Dask worker, and part of the batch's cache key).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pipeline.align import BATCH_ALIGNERS, Aligner, make_aligner
from pipeline.faces_stage import ClipInput, FacesConfig, process_clip
from pipeline.ingest import (
    IngestConfig,
    align_batch,
    clip_row,
    downloading,
    histogram_row,
    subtitle_rows,
    with_media_at_hand,
)
from pipeline.stage import ClipResult, ClipWork, Reject, Stage
from warehouse.location import Location

_local = threading.local()


@dataclass(frozen=True)
class RefreshSettings:
    """Everything the refresh's stages are told.

    The warehouse URI tells the faces stage where shards go, and the clips stage
    where downloaded media go when the warehouse is on object storage. ``run``
    names this refresh: a remote source found unavailable in it is asked once and
    counts one run waited, however many of its clips ask (their subtitles, their
    media); it is no part of a batch's cache key.
    """

    warehouse: str
    aligner: str = "pocketsphinx"
    ingest: IngestConfig = field(default_factory=IngestConfig)
    faces: FacesConfig = field(default_factory=FacesConfig)
    run: str = field(default_factory=lambda: uuid.uuid4().hex)

    def task_size(self, stage: Stage) -> int | None:
        """Clips per compute task of ``stage``; None: the whole batch in one task.

        A costly stage (``Stage.spread``) is cut into tasks of a few clips so that
        a batch spreads over the workers; a cheap one, and alignment by a backend
        that aligns a batch in one call (MFA starts once per batch), take the batch.
        """
        if not stage.spread or (stage.name == "align" and self.aligner in BATCH_ALIGNERS):
            return None
        return self.ingest.task_size


def worker_aligner(name: str, pad_s: float | None = None) -> Aligner:
    """One aligner per worker thread: built once (models load once), never shared between threads."""
    aligners = _local.__dict__.setdefault("aligners", {})
    if (name, pad_s) not in aligners:
        aligners[name, pad_s] = make_aligner(name, pad_s)
    return aligners[name, pad_s]


def _result(stage: str, clip_id: str, out: list[dict] | dict | Reject | None) -> ClipResult | None:
    """A per-clip function's answer (rows, one row, a reject, or ``None`` to wait) as a result."""
    if out is None:
        return None
    if isinstance(out, Reject):
        return ClipResult(clip_id, {}, out)
    return ClipResult(clip_id, {stage: out if isinstance(out, list) else [out]})


FETCH_WAITS = "fetch-waits"
"""The folder under a warehouse on object storage holding each waiting source's record (:func:`fetching`)."""


def fetching(settings: RefreshSettings) -> IngestConfig:
    """The ingest settings of a stage that may fetch a remote source.

    Under a warehouse on object storage (the scale-out) the runs a source waited
    are counted in ``<warehouse>/fetch-waits``, which every worker reaches: in
    each worker's own cache, a source waited up to workers x ``max_waits`` runs.
    """
    warehouse = Location.of(settings.warehouse)
    if warehouse.is_local:
        return settings.ingest
    fetch = replace(settings.ingest.fetch, waits_dir=warehouse.join(FETCH_WAITS).uri)
    return replace(settings.ingest, fetch=fetch)


def compute_subtitles(batch: Sequence[ClipWork], settings: RefreshSettings) -> list[ClipResult | None]:
    """Under a warehouse on object storage (the scale-out), the subtitles alone: the media are the clips
    stage's to fetch. Its task may run on another machine, which downloaded the whole video again."""
    config = fetching(settings)
    if not Location.of(settings.warehouse).is_local:
        config = downloading(config, False)
    return [_result("subtitles", w.clip_id, subtitle_rows(w.clip, config, settings.run)) for w in batch]


def compute_clips(batch: Sequence[ClipWork], settings: RefreshSettings) -> list[ClipResult | None]:
    shared, config = Location.of(settings.warehouse), fetching(settings)
    return [_result("clips", w.clip_id, clip_row(w.clip, config, shared, settings.run)) for w in batch]


def _clip_rows(batch: Sequence[ClipWork], settings: RefreshSettings) -> list[dict[str, object] | None]:
    """Each clip's ``clips`` row with its media at hand (see :func:`with_media_at_hand`); ``None``: it waits."""
    config = fetching(settings)
    return [with_media_at_hand(w.clip, w.rows["clips"][0], config, settings.run) for w in batch]


def compute_align(batch: Sequence[ClipWork], settings: RefreshSettings) -> list[ClipResult | None]:
    aligner = worker_aligner(settings.aligner, settings.ingest.cue_pad_s)
    ready = [(w, row) for w, row in zip(batch, _clip_rows(batch, settings), strict=True) if row is not None]
    results = align_batch([row for _, row in ready], [w.rows["subtitles"] for w, _ in ready], aligner, settings.ingest)
    aligned = {r.clip_id: r for r in results}
    return [aligned.get(w.clip_id) for w in batch]


def compute_histograms(batch: Sequence[ClipWork], settings: RefreshSettings) -> list[ClipResult | None]:
    return [_result("phoneme_histograms", w.clip_id,
                    histogram_row(w.clip_id, w.rows["phone_alignments"], w.rows["cue_outcomes"])) for w in batch]


def compute_faces(batch: Sequence[ClipWork], settings: RefreshSettings) -> list[ClipResult | None]:
    return [None if row is None else process_clip(ClipInput.from_row(row), settings.warehouse, settings.faces,
                                                  settings.ingest.cache_dir)
            for row in _clip_rows(batch, settings)]


STAGES: tuple[Stage, ...] = (
    # not cached: a remote clip that waited for its source must be fetched again next run, not answered with the
    # cached wait for 7 days; fetches are cached on disk (<key>.subs.json) and parsing is cheap
    Stage("subtitles", (), ("subtitles",), compute_subtitles, cacheable=False, whole_sources=True),
    # copies media under a remote warehouse
    Stage("clips", (), ("clips",), compute_clips, cacheable=False, whole_sources=True),
    Stage("align", ("clips", "subtitles"), ("cue_outcomes", "phone_alignments"), compute_align, spread=True),
    Stage("histograms", ("phone_alignments", "cue_outcomes"), ("phoneme_histograms",), compute_histograms),
    Stage("faces", ("clips", "phoneme_histograms"), ("poses", "feature_shards", "clip_spans"), compute_faces,
          cacheable=False, spread=True),
)
"""The refresh's stages in run order."""

INGEST_STAGES = STAGES[:4]
"""Subtitles to histograms: what a corpus needs before selection."""


def stage_named(name: str) -> Stage:
    """The stage called ``name`` (a Dask worker gets the name, not the functions)."""
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise ValueError(f"unknown stage {name!r}; stages: {', '.join(s.name for s in STAGES)}")
