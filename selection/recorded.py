"""Recorded selections in the warehouse: which one is latest, its parameters and members."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow.compute as pc

from selection.methods import SelectionParams
from warehouse.manifest import latest_selection_id
from warehouse.store import Warehouse

PARAM_FIELDS = ("nmin", "nmax", "k", "seed", "method", "distance")


@dataclass(frozen=True)
class RecordedSelection:
    """One ``selections`` row with its members in rank order."""

    info: dict[str, object]  # the row; ``input_versions`` as a dict
    clip_ids: list[str]

    @property
    def selection_id(self) -> str:
        return str(self.info["selection_id"])

    @property
    def params(self) -> SelectionParams:
        return params_of(self.info)


def params_of(info: dict[str, object]) -> SelectionParams:
    """The selection parameters recorded in a selection row or summary."""
    return SelectionParams(**{key: info[key] for key in PARAM_FIELDS})


def recorded_selection(warehouse: Warehouse, selection_id: str | None = None) -> RecordedSelection:
    """Selection ``selection_id`` (default: the latest) as recorded by ``select-samples``.

    Raises:
        ValueError: no selection is recorded, or none has that id.
    """
    chosen = selection_id or latest_selection_id(warehouse)
    if chosen is None:
        raise ValueError(f"{warehouse.uri}: no selection recorded yet (run select-samples)")
    rows = warehouse.read("selections")
    rows = rows.filter(pc.equal(rows["selection_id"], chosen)).to_pylist()
    if not rows:
        raise ValueError(f"{warehouse.uri}: no selection with id {chosen!r}")
    info = {**rows[0], "input_versions": dict(rows[0]["input_versions"])}
    members = warehouse.read("selection_members")
    members = members.filter(pc.equal(members["selection_id"], chosen)).sort_by("rank")
    return RecordedSelection(info, members["clip_id"].to_pylist())
