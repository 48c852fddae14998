"""Where selection inputs come from: a wide Parquet file or the warehouse."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from selection.histograms import HistogramInputError, HistogramSet, read_wide_parquet
from selection.records import file_identity

if TYPE_CHECKING:
    from warehouse.store import Warehouse


@dataclass(frozen=True)
class SelectionInput:
    """Validated histograms plus what exactly they were read from."""

    histograms: HistogramSet
    identity: str  # file content hash or warehouse URI with table versions
    versions: dict[str, int]  # warehouse table versions read (empty for a file)
    description: str  # for messages and reports


def from_file(path: Path) -> SelectionInput:
    """Histograms from a wide Parquet file (see :mod:`selection.histograms`)."""
    histograms = read_wide_parquet(path)
    return SelectionInput(histograms, file_identity(path), {}, str(path))


def from_warehouse(store: Warehouse, versions: Mapping[str, int] | None = None,
                   exact: bool = False) -> SelectionInput:
    """Histograms from the warehouse's ``phoneme_histograms`` table.

    Args:
        store: the warehouse, opened once by the caller (which also records the selection in it).
        versions: table versions to read (as a selection records them); a table
            not named here is read at its latest version, unless ``exact``.
        exact: ``versions`` are all a recorded selection read (reproducing it):
            a table it did not read, ``clip_spans`` made by a later refresh, is
            not read now either, so the candidates are the selection's own.

    When the faces stage has run (a ``clip_spans`` table exists, or it has
    rejected clips), only clips with a valid span are candidates: the others
    cannot become training samples.
    """
    pinned = dict(versions or {})
    # A pinned version is read without the latest: a damaged later log entry does not matter.
    used = pinned["phoneme_histograms"] if "phoneme_histograms" in pinned else store.version("phoneme_histograms")
    if used is None:
        raise HistogramInputError(
            f"{store.uri}: no phoneme_histograms table yet (run `talkface refresh` or "
            "`talkface demo-data` first, or pass --input FILE.parquet)"
        )
    source = f"{store.uri}/phoneme_histograms@v{used}"
    histograms = HistogramSet.from_warehouse_table(store.read("phoneme_histograms", used), source)
    versions = {"phoneme_histograms": used}
    spans_version = pinned.get("clip_spans") if exact else pinned.get("clip_spans", store.version("clip_spans"))
    if spans_version is None and not exact and _faces_rejected_some(store):
        # a faces stage that kept no clip writes rejects but no clip_spans table
        raise HistogramInputError(f"{source}: no clip has a valid face span (the faces stage rejected every clip "
                                  "it saw; see the rejects table)")
    if spans_version is not None:
        spans = store.read("clip_spans", spans_version, columns=["clip_id", "n_frames"])
        valid = {c for c, n in zip(spans["clip_id"].to_pylist(), spans["n_frames"].to_pylist(), strict=True) if n}
        keep = np.fromiter((c in valid for c in histograms.clip_ids), dtype=bool,
                           count=len(histograms))
        histograms = HistogramSet(histograms.clip_ids[keep], histograms.counts[keep])
        versions["clip_spans"] = spans_version
        if len(histograms) == 0:
            raise HistogramInputError(f"{source}: no clip has a valid face span in clip_spans")
    identity = store.uri + "?" + "&".join(f"{k}={v}" for k, v in sorted(versions.items()))
    return SelectionInput(histograms, identity, versions, source)


def _faces_rejected_some(store: Warehouse) -> bool:
    rejects = store.read("rejects", columns=["stage"])
    return "faces" in set(rejects["stage"].to_pylist())
