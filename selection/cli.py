"""``select-samples``: pick a phoneme-balanced subset of clips.

Kept free of torch, Prefect and mediapipe so that it starts in well under a
second; the warehouse (deltalake) is imported only when it is used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from cli_contract import run_cli
from selection.distances import DEFAULT_DISTANCE, DISTANCES
from selection.methods import DEFAULT_METHOD, DEFAULT_SEED, METHODS, SelectionParams
from warehouse.options import refuse_with_input, warehouse_option

EPILOG = """\b
Methods:
  paper   Algorithm 1 of the paper: rank clips rich in rare phones first, draw
          n ~ U{nmin..nmax} k times, keep the top-n closest to uniform.
  scan    the same ranking, every n in [nmin, nmax] (never worse than paper).
  greedy  swap search from the best prefix; subsets need not be prefixes
          (never worse than scan).
\b
Distances to the uniform distribution (default tv):
  tv total variation, kl KL(p||u), l2 Euclidean, js Jensen-Shannon, chi2 Pearson.
\b
Every distance is reported with a certified lower bound on the best that any
subset of nmin..nmax clips can reach (the continuous relaxation, solved to a
0.1% duality gap), and so how close to optimal the selection is, unless
--no-bound is given.
\b
Examples:
  select-samples --nmin 5000 --nmax 15114 --k 50
  select-samples --input hist.parquet --method greedy --output sel.parquet --json
"""


@click.command(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"],
                                                "max_content_width": 100})
@click.option("--input", "input_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Wide histogram Parquet: clip_id plus one integer column per CMU phone "
                   "(AA ... ZH). Default: the warehouse's phoneme_histograms table.")
@warehouse_option
@click.option("--table-version", "table_version", type=click.IntRange(0), default=None,
              help="Read phoneme_histograms at this table version. Default: latest.")
@click.option("--spans-version", "spans_version", type=click.IntRange(0), default=None,
              help="Read clip_spans (which clips have a valid face span) at this table version. "
                   "With --table-version, the two versions a recorded selection lists reproduce it "
                   "exactly. Default: latest.")
@click.option("--nmin", type=int, default=SelectionParams.nmin, show_default=True,
              help="Smallest number of clips to select.")
@click.option("--nmax", type=int, default=SelectionParams.nmax, show_default=True,
              help="Largest number of clips to select (clamped to the number of clips).")
@click.option("--k", type=int, default=SelectionParams.k, show_default=True,
              help="Random draws of n for the paper method.")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True,
              help="Seed of the random draws; the same seed repeats a run exactly.")
@click.option("--method", type=click.Choice(METHODS), default=DEFAULT_METHOD, show_default=True)
@click.option("--distance", type=click.Choice(DISTANCES), default=DEFAULT_DISTANCE,
              show_default=True)
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the selected clips (clip_id, rank) to this Parquet file.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the result.")
@click.option("--bound/--no-bound", default=True, show_default=True,
              help="Compute the certified lower bound on the best achievable value of every distance.")
@click.version_option(package_name="talkface", prog_name="select-samples")
def select_samples(input_path: Path | None, warehouse: str, table_version: int | None,
                   spans_version: int | None, nmin: int, nmax: int, k: int, seed: int, method: str,
                   distance: str, output: Path | None, as_json: bool, bound: bool) -> None:
    """Select a subset of clips whose pooled phoneme histogram is closest to uniform.

    Reads per-clip phone counts from --input or from the warehouse, runs the
    chosen method, prints a summary (or JSON with --json), writes --output, and,
    when reading the warehouse, records the run in its selections tables
    together with the table versions it read.
    """
    refuse_with_input("--table-version", table_version, input_path)
    refuse_with_input("--spans-version", spans_version, input_path)
    params = SelectionParams(nmin=nmin, nmax=nmax, k=k, seed=seed, method=method,
                             distance=distance)
    from selection.runner import select_and_record

    versions = {name: v for name, v in (("phoneme_histograms", table_version), ("clip_spans", spans_version))
                if v is not None}
    info = select_and_record(params, warehouse, input_path, versions, output, bound)
    if info["clamped_nmax"]:
        click.echo(f"select-samples: warning: --nmax {nmax} is larger than the number of clips "
                   f"({info['n_candidates']}); using {info['n_candidates']}", err=True)
    click.echo(json.dumps(info) if as_json else _human(info))


def _human(info: dict[str, object]) -> str:
    lines = [
        f"{info['method']} selection of {info['n']} clips out of {info['n_candidates']} "
        f"({info['input']})",
        f"  {info['distance']} to uniform: {info['value']:.6f}",
    ]
    bounds, within = info["lower_bounds"], info["within_percent"]
    if bounds:
        lines.append(f"  every distance, and its certified lower bound over all {info['nmin']}..{info['nmax']}-clip "
                     "subsets:")
        for name, value in info["distances"].items():
            close = "" if within[name] is None else f"  within {within[name]:.2f}% of optimal"
            lines.append(f"    {name:<5} {value:.6f}  >= {bounds[name]:.6f}{close}")
    else:
        lines.append("  all distances: " + ", ".join(f"{k} {v:.6f}" for k, v in info["distances"].items()))
    lines.append(f"  selection id: {info['selection_id']}")
    if info["input_versions"]:  # what --table-version and --spans-version take to reproduce it
        lines.append("  read: " + ", ".join(f"{table} v{version}" for table, version in info["input_versions"].items()))
    if info["output"]:
        lines.append(f"  written to {info['output']}")
    return "\n".join(lines)


def main() -> None:
    sys.exit(run_cli(select_samples, "select-samples"))
