"""``talkface report``: the HTML histogram report of a selection."""

from __future__ import annotations

from pathlib import Path

import click

from warehouse.options import refuse_with_input, warehouse_option


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
    from selection.recorded import params_of
    from selection.report import render_report, report_recorded_selection

    if (input_path is None) != (selection_path is None):
        raise click.UsageError("--input and --selection go together")
    refuse_with_input("--selection-id", selection_id, input_path)
    if input_path:
        source = sources.from_file(input_path)
        clip_ids, info = records.read_selection_file(selection_path)
        if not clip_ids:
            raise click.UsageError(f"{selection_path}: the selection holds no clips; nothing to report")
        if info is None:  # a selection file from elsewhere: compare the methods at its own size
            params, bounds = SelectionParams(nmin=len(clip_ids), nmax=len(clip_ids)), None
        else:
            params, bounds = params_of(info), info.get("lower_bounds")
        page = render_report(source.histograms, clip_ids, selection_path.name, params, bounds,
                             source.description)
    else:
        page, *_ = report_recorded_selection(warehouse, selection_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    click.echo(f"report written to {out}")
