"""``talkface demo-data``: realistic demo phoneme histograms, into the warehouse or a file."""

from __future__ import annotations

from pathlib import Path

import click

from warehouse.options import warehouse_option


@click.command("demo-data")
@click.option("--clips", type=click.IntRange(min=1), default=15114, show_default=True,
              help="Number of clips (the paper's corpus has 15,114).")
@click.option("--seed", type=int, default=0, show_default=True)
@warehouse_option
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write a wide histogram Parquet file instead of the warehouse table.")
def demo_data(clips: int, seed: int, warehouse: str, output: Path | None) -> None:
    """Generate per-clip phone histograms from real English word frequencies.

    Words from wordfreq, pronunciations from the CMU dictionary, per-clip
    topic mixtures and lengths: the skew resembles the paper's (ZH rare, AH
    frequent). Writes the warehouse's phoneme_histograms table, or --output.
    """
    import pyarrow.parquet as pq

    from selection.demo_data import demo_histogram_table, demo_histograms

    histograms = demo_histograms(clips, seed)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(histograms.to_wide(), output)
        click.echo(f"{clips} demo histograms written to {output}")
        return
    from warehouse.store import Warehouse

    store = Warehouse(warehouse)
    version = store.upsert("phoneme_histograms", demo_histogram_table(histograms, seed))
    click.echo(f"{clips} demo histograms in {store.uri}/phoneme_histograms (version {version})")
