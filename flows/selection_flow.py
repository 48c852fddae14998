"""The selection flow: select a phoneme-balanced subset, report it, announce a new one.

Runs after each successful dataset refresh (see :mod:`flows.deployments`). The
report goes to files (HTML and PNG) and to Prefect artifacts: a markdown
summary table and the histogram figure. A selection that did not exist before
(new histograms, new spans or new parameters) is announced with the event
:data:`SELECTION_EVENT`, which the training deployment's trigger waits for; a
refresh that changed nothing gives the same selection id, so nothing retrains.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_image_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from selection.distances import DEFAULT_DISTANCE
from selection.methods import DEFAULT_METHOD, DEFAULT_SEED, SelectionParams
from selection.report_summary import SelectionReport, write_selection_report

SELECTION_EVENT = "talkface.selection.created"
"""Emitted once per new selection; resource ``talkface.selection.<id>``, payload has the id and warehouse."""


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def recorded_ids_task(warehouse_uri: str) -> set[str]:
    from warehouse.store import Warehouse

    return set(Warehouse(warehouse_uri).read("selections", columns=["selection_id"])["selection_id"].to_pylist())


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


@task(cache_policy=NO_CACHE)
def announce_task(info: dict[str, object], warehouse_uri: str) -> None:
    emit_event(SELECTION_EVENT,
               resource={"prefect.resource.id": f"talkface.selection.{info['selection_id']}",
                         "talkface.warehouse": warehouse_uri},
               payload={"selection_id": info["selection_id"], "warehouse_uri": warehouse_uri, "n": info["n"]})


@flow(name="selection")
def selection(warehouse_uri: str, report_dir: str = "talkface-out/reports",
              nmin: int = SelectionParams.nmin, nmax: int = SelectionParams.nmax, k: int = SelectionParams.k,
              seed: int = DEFAULT_SEED, method: str = DEFAULT_METHOD,
              distance: str = DEFAULT_DISTANCE) -> dict[str, object]:
    """Select from the warehouse's histograms, write and publish the report, announce a new selection.

    Returns:
        The selection summary (as ``select-samples --json`` prints it), with
        ``report`` (HTML path) and ``new`` (whether this selection id is new).
    """
    known = recorded_ids_task(warehouse_uri)
    info = select_task(SelectionParams(nmin, nmax, k, seed, method, distance), warehouse_uri)
    new = info["selection_id"] not in known
    if new:  # announced as soon as it is recorded: a rerun finds it known and would never announce it
        announce_task(info, warehouse_uri)
    report = report_task(warehouse_uri, info["selection_id"], report_dir)
    publish_task(report)
    return {**info, "report": report.html, "figure": report.figure, "new": new}
