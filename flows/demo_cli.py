"""``talkface demo``: the whole pipeline on a small offline demo corpus."""

from __future__ import annotations

from pathlib import Path

import click

from cli_contract import configure_output, verbose_option


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("talkface-demo"), show_default=True,
              help="Folder for the demo corpus, warehouse, reports, training run and video.")
@click.option("--clips", type=click.IntRange(2, 5), default=None,
              help="Demo clips to use (default: all five LibriVox utterances).")
@click.option("--steps", type=click.IntRange(1), default=10, show_default=True,
              help="Training steps of the tiny config on the CPU.")
@verbose_option
def demo(out_dir: Path, clips: int | None, steps: int, verbose: int) -> None:
    """Run the README's main job: build a small demo corpus offline (LibriVox
    speech from Debian's pocketsphinx-testdata, a real portrait that matplotlib
    ships, animated into 25 fps talking-head videos), refresh the warehouse
    (subtitles, alignment, histograms, faces), select a phoneme-balanced subset,
    write the histogram report, train the generator a few CPU steps with the
    tiny config and generate a talking-face video. Prints where the report and
    the video are. Runs in Prefect's embedded mode: no server needed.
    """
    configure_output(verbose)
    from flows.demo import demo as demo_flow
    from pipeline.demo_corpus import DemoCorpusError

    try:
        result = demo_flow(str(out_dir), clips, steps)
    except DemoCorpusError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"warehouse: {result.warehouse} ({result.clips_with_histograms} clips with histograms)")
    click.echo(f"selection: {result.selection_id} ({result.selected} clips)")
    click.echo(f"training run: {result.run_dir} (step {result.step})")
    click.echo(f"report: {result.report}")
    click.echo(f"histogram figure: {result.figure}")
    click.echo(f"video: {result.video}")
