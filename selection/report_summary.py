"""A recorded selection's report as files and a markdown summary, for publishing elsewhere.

``talkface report`` writes one HTML page; an orchestrator (the Prefect
selection flow) also wants the histogram figure as a PNG and a short markdown
table it can show as an artifact. Both come from the same functions as the HTML
report (:mod:`selection.report`), so the three never disagree.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from selection.distances import DISTANCES
from warehouse.location import Location


@dataclass(frozen=True)
class SelectionReport:
    """Where a selection's report went, and its markdown summary."""

    selection_id: str
    html: str  # the full HTML report (figures embedded): a path, or a URI on object storage
    figure: str  # the phone histogram, all clips against the selection, linear scale (PNG)
    markdown: str  # the summary table

    def figure_data_url(self) -> str:
        """The figure as a ``data:`` URL, for viewers that cannot read local files."""
        return "data:image/png;base64," + base64.b64encode(Location.of(self.figure).read_bytes()).decode()


def summary_markdown(info: dict[str, object], html: str | None = None) -> str:
    """A markdown table of one selection: size, parameters and every distance to uniform."""
    distances: dict[str, float] = info["distances"]  # type: ignore[assignment]
    bounds: dict[str, float] | None = info.get("lower_bounds")  # type: ignore[assignment]
    lines = [
        f"### Selection `{info['selection_id']}`",
        "",
        f"{info['method']} selection of **{info['n']}** clips out of {info['n_candidates']} "
        f"(nmin {info['nmin']}, nmax {info['nmax']}, k {info['k']}, seed {info['seed']}), "
        f"optimised distance **{info['distance']}**; input {info['input']}.",
        "",
        "| distance to uniform | " + " | ".join(DISTANCES) + " |",
        "|---|" + "---|" * len(DISTANCES),
        "| selection | " + " | ".join(f"{distances[d]:.6f}" for d in DISTANCES) + " |",
    ]
    if bounds:
        lines.append("| lower bound | " + " | ".join(f"{bounds[d]:.6f}" for d in DISTANCES) + " |")
    if html is not None:
        lines += ["", f"Full report: `{html}`"]
    return "\n".join(lines) + "\n"


def write_selection_report(warehouse_uri: str, selection_id: str,
                           out_dir: str | os.PathLike[str] | Location) -> SelectionReport:
    """Write ``<out_dir>/report-<id>.html`` and ``histogram-<id>.png`` of a recorded selection.

    ``out_dir`` may be a folder or an object-store URI. The histograms are read
    at the table versions the selection recorded, as ``talkface report`` does.
    """
    from selection.report import report_recorded_selection

    page, figures, source, recorded = report_recorded_selection(warehouse_uri, selection_id)
    folder = Location.of(out_dir)
    html = folder.join(f"report-{selection_id}.html")
    html.write(lambda out: out.write(page.encode("utf-8")), "report")
    _, png = figures[0]  # linear scale
    figure = folder.join(f"histogram-{selection_id}.png")
    figure.write(lambda out: out.write(base64.b64decode(png)), "figure")
    summary = {**recorded.info, "n_candidates": len(source.histograms), "input": source.description}
    return SelectionReport(selection_id, html.uri, figure.uri, summary_markdown(summary, html.uri))
