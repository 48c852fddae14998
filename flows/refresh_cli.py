"""``talkface refresh``: ingest a corpus into the warehouse (subtitles to phoneme histograms)."""

from __future__ import annotations

from typing import Any

import click

from cli_contract import configure_output, verbose_option
from flows.ingest_options import ingest_options, ingest_settings
from warehouse.options import warehouse_option


@click.command("refresh")
@click.option("--corpus", required=True, metavar="PATH_OR_SPEC",
              help="A folder of media with sidecar subtitles (<stem>.en.vtt/.srt), local or on object "
                   "storage (s3://bucket/corpus), a segment list "
                   "(.csv/.parquet: clip_id, source, start_s, end_s, speaker_id), or "
                   "voxceleb:<folder> of VoxCeleb1/2 metadata .txt files.")
@warehouse_option
@click.option("--aligner", type=click.Choice(["pocketsphinx", "mfa"]), default="pocketsphinx",
              show_default=True,
              help="pocketsphinx runs offline here; mfa needs the `mfa` executable (its own container).")
@ingest_options
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@verbose_option
def refresh(corpus: str, warehouse: str, aligner: str, progress: bool, verbose: int, **ingest: Any) -> None:
    """Bring the warehouse up to date with a corpus: fetch and clean subtitles,
    probe media, force-align cues to phones (39 CMU classes), count phoneme
    histograms, then track the face, keep the longest valid span and write its
    feature shard under <warehouse>/shards/. Caption times are hints: each cue is searched around its times,
    a cue that does not align or does not match its audio costs only that cue
    (see the `cue_outcomes` table), and a clip is rejected only when too few of
    its caption words align (--min-coverage). Only clips that a stage has not yet written or rejected are
    processed, so re-running changes nothing and adding clips processes only the
    new ones. Bad clips go to the `rejects` table with stage and reason; the run
    goes on. A remote clip whose site fails with network errors or refuses it for a
    while (an outage, a rate limit, a bot check) is not rejected but waits for the
    next run, 3 runs in a row at most (docs/ingest.md). Prints a summary at the
    end; `talkface rejects` lists the rejects and retries them.
    """
    from pipeline.corpus import CorpusError, load_corpus

    try:  # before Prefect starts: a bad corpus is one line, and nothing is created
        load_corpus(corpus)
    except CorpusError as exc:
        raise click.BadParameter(str(exc), param_hint="--corpus") from exc
    configure_output(verbose)
    from flows.refresh import refresh as refresh_flow

    config, faces = ingest_settings(**ingest)
    summary = refresh_flow(corpus, warehouse, aligner, config, progress, faces)
    for line in summary.lines():
        click.echo(line)
