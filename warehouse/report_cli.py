"""``talkface report``: the HTML histogram report of a selection."""

from __future__ import annotations

from pathlib import Path

import click

from warehouse.options import warehouse_option


@click.command()
@warehouse_option
@click.option("--selection-id", help="Report this recorded selection. Default: the latest one.")
@click.option("--input", "input_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Wide histogram Parquet (as for select-samples) instead of the warehouse; "
                   "needs --selection.")
@click.option("--selection", "selection_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Selection Parquet written by select-samples --output.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("talkface-out/report.html"), show_default=True,
              help="Where to write the HTML report.")
def report(warehouse: str, selection_id: str | None, input_path: Path | None,
           selection_path: Path | None, out: Path) -> None:
    """Write the phoneme histogram report of a selection.

    From the warehouse (default), the latest recorded selection (or
    --selection-id) is reported against the histograms at the table versions it
    read. From files, give --input and --selection. The report compares every
    method with the selection's parameters; a selection file without recorded
    parameters is compared at its own size.
    """
    from selection import records, sources
    from selection.methods import SelectionParams
    from warehouse.report import render_report

    if (input_path is None) != (selection_path is None):
        raise click.UsageError("--input and --selection go together")
    if input_path:
        source = sources.from_file(input_path)
        clip_ids, info = records.read_selection_file(selection_path)
        label = selection_path.name
    else:
        clip_ids, info = recorded_selection(warehouse, selection_id)
        source = sources.from_warehouse(warehouse, info["input_versions"])
        label = f"{info['method']} {info['selection_id']}"
    if info is None:
        params = SelectionParams(nmin=len(clip_ids), nmax=len(clip_ids))
        bounds = None
    else:
        params = SelectionParams(**{key: info[key] for key in
                                    ("nmin", "nmax", "k", "seed", "method", "distance")})
        bounds = info.get("lower_bounds")
    page = render_report(source.histograms, clip_ids, label, params, bounds, source.description)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    click.echo(f"report written to {out}")


def recorded_selection(uri: str, selection_id: str | None) -> tuple[list[str], dict]:
    """Members (rank order) and the recorded row of a selection in the warehouse."""
    import pyarrow.compute as pc

    from warehouse.store import Warehouse

    store = Warehouse(uri)
    selections = store.read("selections")
    if selections.num_rows == 0:
        raise click.ClickException(f"{store.uri}: no selection recorded yet (run select-samples)")
    if selection_id is None:
        selections = selections.sort_by([("created_at", "descending")]).slice(0, 1)
    else:
        selections = selections.filter(pc.equal(selections["selection_id"], selection_id))
        if selections.num_rows == 0:
            raise click.ClickException(f"{store.uri}: no selection with id {selection_id!r}")
    info = selections.to_pylist()[0]
    info["input_versions"] = dict(info["input_versions"])
    members = store.read("selection_members")
    members = members.filter(pc.equal(members["selection_id"], info["selection_id"]))
    return members.sort_by("rank")["clip_id"].to_pylist(), info
