"""The selection flow: select a phoneme-balanced subset, report it, announce a new one.

Runs after each successful dataset refresh (see :mod:`flows.deployments`). The
report goes to files (HTML and PNG) and to Prefect artifacts: a markdown
summary table and the histogram figure. A selection not announced before (new
histograms, new spans or new parameters) is announced with the event
:data:`SELECTION_EVENT`, which the training deployment's trigger waits for; a
refresh that changed nothing gives the same selection id, so nothing retrains.

A selection is recorded before it is announced, so a run killed in between
leaves it recorded and unannounced: an announcement counts once the Prefect API
holds its event, and is then written to ``selection_announcements``; a rerun
announces any selection not there. The event's id is derived from the selection
and the warehouse, and an event the API already holds is not sent again, so a
run killed after sending it and before writing the row does not start a second
training.
"""

from __future__ import annotations

import time
import uuid

from prefect import flow, task
from prefect.artifacts import create_image_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from selection.distances import DEFAULT_DISTANCE
from selection.methods import DEFAULT_METHOD, DEFAULT_SEED, SelectionParams
from selection.report_summary import SelectionReport, write_selection_report

SELECTION_EVENT = "talkface.selection.created"
"""Emitted once per new selection; resource ``talkface.selection.<id>``, payload has the id and warehouse."""
ANNOUNCEMENT_WAIT_S = 60.0
"""How long an announcement may take to reach the API's event store (its persister writes every 5 s)."""
_ANNOUNCEMENTS = uuid.UUID("5f0c61b4-3f27-4c39-9d0e-6c1f3e0b8a52")
"""Namespace of the announcement event ids (uuid5)."""


def announcement_id(warehouse_uri: str, selection_id: str) -> uuid.UUID:
    """The id of a selection's announcement event: the same each time, so a repeat is the same event."""
    return uuid.uuid5(_ANNOUNCEMENTS, f"{warehouse_uri}\n{selection_id}")


def api_holds_event(event_id: uuid.UUID, wait_s: float = 0.0) -> bool:
    """Whether the Prefect API holds event ``event_id``, asking again for up to ``wait_s`` seconds."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventIDFilter

    wanted = EventFilter(id=EventIDFilter(id=[event_id]))
    deadline = time.monotonic() + wait_s
    with get_client(sync_client=True) as client:
        while not client.read_events(wanted, limit=1).events:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)
    return True


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def announced_task(warehouse_uri: str, selection_id: str) -> bool:
    """Whether ``selection_id`` has an announcement row."""
    import pyarrow.compute as pc

    from warehouse.store import Warehouse

    ids = Warehouse(warehouse_uri).read("selection_announcements", columns=["selection_id"])["selection_id"]
    return bool(pc.any(pc.equal(ids, selection_id)).as_py())


@task(cache_policy=NO_CACHE)
def select_task(params: SelectionParams, warehouse_uri: str) -> dict[str, object]:
    from selection.runner import select_and_record

    return select_and_record(params, warehouse_uri)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def report_task(warehouse_uri: str, selection_id: str, report_dir: str) -> SelectionReport:
    return write_selection_report(warehouse_uri, selection_id, report_dir)


@task(cache_policy=NO_CACHE)
def publish_task(report: SelectionReport) -> None:
    """The report as artifacts in the Prefect UI: the summary table and the histogram figure."""
    create_markdown_artifact(report.markdown, key="selection-summary",
                             description=f"selection {report.selection_id}")
    create_image_artifact(report.figure_data_url(), key="selection-histogram",
                          description=f"phone histogram, all clips against selection {report.selection_id}")


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def announce_task(info: dict[str, object], warehouse_uri: str) -> None:
    """Send the selection's event unless the API holds it already, wait until it does, then record that.

    Raises:
        RuntimeError: the API did not hold the event after :data:`ANNOUNCEMENT_WAIT_S`.
    """
    from selection.records import announcement_row
    from warehouse.store import Warehouse

    selection_id = str(info["selection_id"])
    event_id = announcement_id(warehouse_uri, selection_id)
    if not api_holds_event(event_id):
        emit_event(SELECTION_EVENT, id=event_id,
                   resource={"prefect.resource.id": f"talkface.selection.{selection_id}",
                             "talkface.warehouse": warehouse_uri},
                   payload={"selection_id": selection_id, "warehouse_uri": warehouse_uri, "n": info["n"]})
        if not api_holds_event(event_id, ANNOUNCEMENT_WAIT_S):
            raise RuntimeError(f"selection {selection_id}: the Prefect API did not hold its announcement "
                               f"{event_id} {ANNOUNCEMENT_WAIT_S:.0f} s after it was sent")
    Warehouse(warehouse_uri).upsert("selection_announcements", announcement_row(selection_id, str(event_id)))


@flow(name="selection")
def selection(warehouse_uri: str, report_dir: str = "talkface-out/reports",
              nmin: int = SelectionParams.nmin, nmax: int = SelectionParams.nmax, k: int = SelectionParams.k,
              seed: int = DEFAULT_SEED, method: str = DEFAULT_METHOD,
              distance: str = DEFAULT_DISTANCE) -> dict[str, object]:
    """Select from the warehouse's histograms, write and publish the report, announce a new selection.

    Returns:
        The selection summary (as ``select-samples --json`` prints it), with
        ``report`` (HTML path) and ``new`` (whether this run announced the
        selection: it had not been announced before).
    """
    info = select_task(SelectionParams(nmin, nmax, k, seed, method, distance), warehouse_uri)
    new = not announced_task(warehouse_uri, info["selection_id"])
    if new:  # before the report, whose failure must not leave the selection unannounced
        announce_task(info, warehouse_uri)
    report = report_task(warehouse_uri, info["selection_id"], report_dir)
    publish_task(report)
    return {**info, "report": report.html, "figure": report.figure, "new": new}
