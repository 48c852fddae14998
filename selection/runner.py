"""One selection run: read, select, bound, write and record.

The body of ``select-samples``, shared with the Prefect selection flow so that
both record exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from selection import records, sources
from selection.distances import within_percent
from selection.methods import SelectionParams, select


def select_and_record(params: SelectionParams, warehouse: str, input_path: Path | None = None,
                      versions: Mapping[str, int] | None = None, output: Path | None = None,
                      bound: bool = True) -> dict[str, object]:
    """Run one selection as ``select-samples`` does; the Prefect selection flow calls it too.

    Reads --input or the warehouse (its tables at ``versions``, the latest where
    not named: ``phoneme_histograms`` and ``clip_spans``), selects, computes the
    certified lower bound of every distance, writes ``output``, and records a
    warehouse-read selection in the selections tables with the table versions
    it read.

    Returns:
        The JSON summary (what ``--json`` prints), with ``selection_id``.
    """
    store = None
    if input_path:
        source = sources.from_file(input_path)
    else:
        from warehouse.store import Warehouse  # deltalake: imported only for a warehouse run

        store = Warehouse(warehouse)
        source = sources.from_warehouse(store, versions)
    histograms = source.histograms
    selection = select(histograms, params)
    bounds = None
    if bound:
        from selection.bounds import lower_bounds  # scipy's optimisers: imported only when used

        bounds = lower_bounds(histograms.counts, selection.params.nmin, selection.params.nmax,
                              selection.members)
    clip_ids = histograms.clip_ids[selection.members]
    sel_id = records.selection_id(selection, source.identity)
    within = None if bounds is None else within_percent(selection.distances, bounds)
    info = records.summary(selection, bounds, selection_id=sel_id, input=source.description,
                           input_versions=source.versions, within_percent=within,
                           output=str(output) if output else None)
    if output:
        records.write_selection_file(output, clip_ids, info)
    if store is not None:
        selections, members = records.warehouse_rows(sel_id, info, clip_ids, source.versions)
        # A re-run under the same id replaces the members as a whole; the selections
        # row comes last, so a selection row means its members exist.
        store.replace_groups("selection_members", members, "selection_id", [sel_id])
        store.upsert("selections", selections)
    return info

