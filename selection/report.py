"""The histogram report: is the selection balanced, and how do the methods compare?

One self-contained HTML file (figures embedded as PNG) with

- the phone histogram of all clips and of the selection, phones ordered by
  their count over all clips, most frequent first, as in the paper's Fig. 3,
  on a linear and on a log scale, and the phone shares against uniform;
- clip and phone counts, the rarest phone and the phones that never occur;
- every named distance to uniform for each method run with the selection's
  parameters, the selection itself, and the lower bound for the size range.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass

import numpy as np

from selection.distances import DISTANCES, all_distances, to_distribution, within_percent
from selection.histograms import HistogramSet
from selection.methods import METHODS, SelectionParams, select
from warehouse.phones import PHONES


@dataclass(frozen=True)
class ReportRow:
    """One line of the method comparison table."""

    label: str
    n: int
    distances: dict[str, float]


def compare_methods(histograms: HistogramSet, params: SelectionParams) -> list[ReportRow]:
    """Run every method with ``params`` (method aside) and collect their distances."""
    rows = []
    for method in METHODS:
        result = select(histograms, SelectionParams(**{**params.__dict__, "method": method}))
        rows.append(ReportRow(method, result.n, result.distances))
    return rows


def rarest_and_missing(counts: np.ndarray) -> tuple[str, str]:
    """The rarest phone with its count, and the phones that never occur, for the counts table.

    A phone with count 0 is the rarest only when it is the only one missing;
    when several are, naming the first of them would be arbitrary, so the
    rarest phone that does occur is named and the missing ones are listed.
    """
    missing = [PHONES[j] for j in np.flatnonzero(counts == 0)]
    present = np.flatnonzero(counts > 0)
    if len(missing) == 1:
        rarest = f"{missing[0]} (0)"
    elif present.size:
        j = int(present[np.argmin(counts[present])])
        rarest = f"{PHONES[j]} ({int(counts[j]):,})"
    else:
        rarest = "&ndash;"
    return rarest, ", ".join(missing) or "none"


def _readable_count(value: float, _position: int = 0) -> str:
    """A log-axis tick label: 200, 5k, 1M, 20M rather than powers of ten."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def _figure_png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def histogram_figures(all_counts: np.ndarray, selected_counts: np.ndarray) -> list[tuple[str, str]]:
    """(title, base64 PNG) of the count histograms (linear, log) and the shares against uniform."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    order = np.argsort(-all_counts, kind="stable")  # most frequent first, as in Fig. 3
    labels = [PHONES[j] for j in order]
    x = np.arange(len(order))
    figures = []
    for scale in ("linear", "log"):
        fig, ax = plt.subplots(figsize=(12, 3.6))
        ax.bar(x - 0.2, all_counts[order], width=0.4, label="all clips", color="#9aa5b1")
        ax.bar(x + 0.2, selected_counts[order], width=0.4, label="selection", color="#1f6feb")
        ax.set_yscale(scale)
        if scale == "log":  # ticks at 1, 2 and 5 times each power of ten, labelled 200k, 1M, ...
            ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_minor_locator(ticker.NullLocator())
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(_readable_count))
            ax.grid(axis="y", which="major", alpha=0.3)
            for offset, series, color in ((-0.2, all_counts, "#9aa5b1"), (0.2, selected_counts, "#1f6feb")):
                for position in np.flatnonzero(series[order] == 0):  # no bar on a log axis: say so
                    ax.annotate("0", (x[position] + offset, 0), xycoords=("data", "axes fraction"),
                                xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                                fontsize=8, color=color)
        ax.set_xticks(x, labels, rotation=90, fontsize=8)
        ax.set_ylabel("phone occurrences")
        ax.legend()
        ax.set_title(f"Phone histogram ({scale} scale)")
        figures.append((f"Phone histogram, {scale} scale", _figure_png(fig)))
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(12, 3.6))
    ax.plot(x, 100 * to_distribution(all_counts)[order], "o-", label="all clips", color="#9aa5b1")
    ax.plot(x, 100 * to_distribution(selected_counts)[order], "o-", label="selection",
            color="#1f6feb")
    ax.axhline(100 / len(PHONES), color="#d1242f", linestyle="--", label="uniform")
    ax.set_xticks(x, labels, rotation=90, fontsize=8)
    ax.set_ylabel("share of phones (%)")
    ax.legend()
    ax.set_title("Phone distribution against uniform")
    figures.append(("Phone distribution against uniform", _figure_png(fig)))
    plt.close(fig)
    return figures


def render_report(histograms: HistogramSet, selected_ids: list[str], label: str,
                  params: SelectionParams, lower_bounds: dict[str, float] | None,
                  source: str, figures: list[tuple[str, str]] | None = None) -> str:
    """The report as one HTML document (see module docstring).

    Args:
        figures: :func:`histogram_figures` of this selection, when the caller
            already drew them; drawn here otherwise.
    """
    selected = histograms.subset(selected_ids)
    all_counts, selected_counts = histograms.totals, selected.totals
    figures = figures if figures is not None else histogram_figures(all_counts, selected_counts)
    rows = [ReportRow(f"selection ({label})", len(selected), all_distances(selected_counts)),
            ReportRow("all clips", len(histograms), all_distances(all_counts))]
    rows += compare_methods(histograms, params)
    esc = html.escape

    def table(headers: list[str], body: list[list[str]]) -> str:
        head = "".join(f"<th>{esc(h)}</th>" for h in headers)
        lines = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body)
        return f"<table><tr>{head}</tr>{lines}</table>"

    counts_table = table(["", "clips", "phones", "rarest phone", "missing phones", "most frequent phone"], [
        [esc(name), f"{n:,}", f"{int(c.sum()):,}", *rarest_and_missing(c),
         f"{PHONES[int(np.argmax(c))]} ({int(c.max()):,})"]
        for name, n, c in (("all clips", len(histograms), all_counts),
                           ("selection", len(selected), selected_counts))
    ])  # fmt: skip
    distance_rows = [[esc(r.label), f"{r.n:,}"] + [f"{r.distances[d]:.6f}" for d in DISTANCES]
                     for r in rows]
    if lower_bounds:
        distance_rows.append(["certified lower bound (relaxation)", "&ndash;"]
                             + [f"{lower_bounds[d]:.6f}" for d in DISTANCES])
        within = within_percent(rows[0].distances, lower_bounds)
        distance_rows.append(["selection: within ... of optimal", "&ndash;"]
                             + [f"{within[d]:.2f}%" if within[d] is not None else "&ndash;" for d in DISTANCES])
    distances_table = table(["", "clips"] + list(DISTANCES), distance_rows)
    figures = "".join(f'<h3>{esc(title)}</h3><img alt="{esc(title)}" src="data:image/png;base64,{png}">'
                      for title, png in figures)
    p = params
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Phoneme histogram report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #1f2328; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #d0d7de; padding: 4px 10px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Phoneme histogram report</h1>
<p>Input: {esc(source)}<br>
Selection: {esc(label)}; comparison parameters: nmin {p.nmin:,}, nmax {p.nmax:,}, k {p.k},
seed {p.seed}, optimised distance <b>{esc(p.distance)}</b>.</p>
<h2>Counts</h2>{counts_table}
<h2>Distance to the uniform distribution</h2>
<p>Lower is more balanced. tv: total variation; kl: KL(p||u) in nats; l2: Euclidean;
js: Jensen-Shannon in nats; chi2: Pearson chi-square. The lower bound holds for every
subset of nmin..nmax clips.</p>
{distances_table}
<h2>Histograms</h2>{figures}
</body></html>
"""


def report_recorded_selection(warehouse_uri: str, selection_id: str | None = None):
    """The HTML report of a recorded selection (default: the latest), against the
    histograms at the table versions it read.

    Returns:
        The page, its figures (``(title, base64 PNG)``, linear scale first), the
        histograms it was computed from (a ``SelectionInput``) and the
        ``RecordedSelection``.
    """
    from selection import sources
    from selection.recorded import recorded_selection
    from warehouse.store import Warehouse

    store = Warehouse(warehouse_uri)
    recorded = recorded_selection(store, selection_id)
    source = sources.from_warehouse(store, recorded.info["input_versions"], exact=True)
    figures = histogram_figures(source.histograms.totals, source.histograms.subset(recorded.clip_ids).totals)
    page = render_report(source.histograms, recorded.clip_ids, f"{recorded.info['method']} {recorded.selection_id}",
                         recorded.params, recorded.info.get("lower_bounds"), source.description, figures)
    return page, figures, source, recorded
