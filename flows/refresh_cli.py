"""``talkface refresh``: ingest a corpus into the warehouse (subtitles to phoneme histograms)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from cli_contract import configure_output, verbose_option
from warehouse.location import DEFAULT_CACHE_DIR
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
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_CACHE_DIR, show_default=True,
              help="Where fetched subtitles (and media, with --download-media) are kept per source, "
                   "and copies of media on object storage.")
@click.option("--download-media/--no-download-media", default=False, show_default=True,
              help="Also download the media of remote sources (YouTube ids, URLs); without it, "
                   "remote clips stop after their subtitles.")
@click.option("--max-height", type=click.IntRange(min=0), default=720, show_default=True,
              help="With --download-media: download video at this height or less (the nearest above where a "
                   "source has none), H.264 first. The faces stage cuts 112-px crops, and decoding is the "
                   "costliest part of an HD clip (a 1080p frame about 2.5 720p ones); 0 = the best a site has.")
@click.option("--cookies", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="FILE",
              help="A Netscape cookies file (as yt-dlp's --cookies takes) of an account that may see the "
                   "videos a site shows only when signed in (age-restricted, members only, past a bot "
                   "check). Read only: each fetch works on a private copy. Every worker must find it "
                   "at this path.")
@click.option("--min-coverage", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Reject a clip when its aligned cues hold less than this share of its caption words "
                   "(a failed or mismatched cue costs only that cue). Applies to the clips aligned "
                   "in this run; clips aligned before keep their outcome.")
@click.option("--cue-pad", type=click.FloatRange(0.0, 5.0), default=0.5, show_default=True, metavar="SECONDS",
              help="How far the aligner searches beyond a cue's caption times (caption times are hints).")
@click.option("--landmark-every", type=click.IntRange(1), default=1, show_default=True, metavar="N",
              help="Run the face mesh on every Nth frame only; the frames between two of them are "
                   "interpolated where the face barely moved (within 3 degrees and 5 percent of its size), "
                   "measured otherwise. Faster on still talking heads, poses a little less exact "
                   "(docs/faces.md); 1 measures every frame.")
@click.option("--pin-core/--no-pin-core", default=True, show_default=True,
              help="Track each clip's face on one free CPU core, so that the face mesh's threads "
                   "hand frames over on one core (less CPU and faster; docs/faces.md). Cores are "
                   "claimed through lock files, so parallel tasks and workers of one machine never "
                   "share one; --no-pin-core lets the threads run on any core.")
@click.option("--batch-size", type=click.IntRange(1), default=25, show_default=True,
              help="Clips per atomic warehouse write; an interrupted run loses at most one batch.")
@click.option("--task-size", type=click.IntRange(1), default=1, show_default=True, metavar="N",
              help="Clips per compute task of the costly stages (alignment, faces): the tasks of a "
                   "batch run in parallel (threads here, the Dask cluster in the scale-out "
                   "deployment) and are written together.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@verbose_option
def refresh(corpus: str, warehouse: str, aligner: str, cache_dir: Path, download_media: bool, max_height: int,
            cookies: Path | None, min_coverage: float, cue_pad: float, landmark_every: int, pin_core: bool,
            batch_size: int, task_size: int, progress: bool, verbose: int) -> None:
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
    from pipeline.faces_stage import FacesConfig
    from pipeline.ingest import IngestConfig
    from pipeline.measure import KeyframeConfig

    base = IngestConfig()
    config = replace(base, cache_dir=cache_dir, batch_size=batch_size, task_size=task_size,
                     min_coverage=min_coverage, cue_pad_s=cue_pad,
                     fetch=replace(base.fetch, download_media=download_media, max_height=max_height,
                                   cookie_file=str(cookies.resolve()) if cookies else None))
    faces = FacesConfig(keyframes=KeyframeConfig(every=landmark_every), pin_core=pin_core)
    summary = refresh_flow(corpus, warehouse, aligner, config, progress, faces)
    for line in summary.lines():
        click.echo(line)
