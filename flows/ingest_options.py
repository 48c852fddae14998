"""The refresh's ingest and faces options, shared by ``talkface refresh`` and ``talkface deploy``.

The scheduled refresh of a deployment runs with what ``deploy`` was told, as a
``talkface refresh`` would: without them it ran on the defaults, so a corpus of
YouTube ids never had its media downloaded and its clips stopped after their
subtitles. Kept free of heavy imports (``--help`` answers fast).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli_contract import options
from pipeline.face_options import face_filter_options, faces_config
from warehouse.location import DEFAULT_CACHE_DIR

if TYPE_CHECKING:
    from pipeline.faces_stage import FacesConfig
    from pipeline.ingest import IngestConfig

_FETCH_AND_ALIGN = (
    click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                 default=DEFAULT_CACHE_DIR, show_default=True,
                 help="Where fetched subtitles (and media, with --download-media) are kept per source, "
                      "and copies of media on object storage."),
    click.option("--download-media/--no-download-media", default=False, show_default=True,
                 help="Also download the media of remote sources (YouTube ids, URLs); without it, "
                      "remote clips stop after their subtitles."),
    click.option("--max-height", type=click.IntRange(min=0), default=720, show_default=True,
                 help="With --download-media: download video at this height or less (the nearest above where a "
                      "source has none), H.264 first. The faces stage cuts 112-px crops, and decoding is the "
                      "costliest part of an HD clip (a 1080p frame about 2.5 720p ones); 0 = the best a site has."),
    click.option("--prune-downloads/--keep-downloads", default=False, show_default=True,
                 help="After the run, remove the cached media of sources whose clips are all done (a span "
                      "written, or rejected): downloads and copies of remote media, on this machine, on every "
                      "Dask worker and under a warehouse on object storage; the subtitles stay. A clip retried "
                      "later fetches its source again, unless the site has removed the video since. Media are "
                      "most of a cache (an hour of 720p video is about 0.7 GB)."),
    click.option("--cookies", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="FILE",
                 help="A Netscape cookies file (as yt-dlp's --cookies takes) of an account that may see the "
                      "videos a site shows only when signed in (age-restricted, members only, past a bot "
                      "check). Read only: each fetch works on a private copy. Every worker must find it "
                      "at this path."),
    click.option("--fetch-sleep", type=click.FloatRange(0.0), default=0.0, show_default=True, metavar="SECONDS",
                 help="Pause this long before each request to a site while fetching, and before each subtitle "
                      "and media download (as yt-dlp's --sleep-requests, --sleep-subtitles, --sleep-interval). "
                      "A big YouTube corpus fetched at full speed gets rate-limited for an hour or more (its "
                      "clips wait for a later run); 1-5 s keeps under the limit, at that much more time a video."),
    click.option("--min-coverage", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
                 help="Reject a clip when its aligned cues hold less than this share of its caption words "
                      "(a failed or mismatched cue costs only that cue). Applies to the clips aligned "
                      "in this run; clips aligned before keep their outcome."),
    click.option("--cue-pad", type=click.FloatRange(0.0, 5.0), default=0.5, show_default=True, metavar="SECONDS",
                 help="How far the aligner searches beyond a cue's caption times (caption times are hints)."),
)
_RUNNING = (
    click.option("--pin-core/--no-pin-core", default=True, show_default=True,
                 help="Track each clip's face on one free CPU core, so that the face mesh's threads "
                      "hand frames over on one core (less CPU and faster; docs/faces.md). Cores are "
                      "claimed through lock files, so parallel tasks and workers of one machine never "
                      "share one; --no-pin-core lets the threads run on any core."),
    click.option("--batch-size", type=click.IntRange(1), default=25, show_default=True,
                 help="Clips per atomic warehouse write; an interrupted run loses at most one batch."),
    click.option("--task-size", type=click.IntRange(1), default=1, show_default=True, metavar="N",
                 help="Clips per compute task of the costly stages (alignment, faces): the tasks of a "
                      "batch run in parallel (threads here, the Dask cluster in the scale-out "
                      "deployment) and are written together."),
)


ingest_options = options(*_FETCH_AND_ALIGN, face_filter_options, *_RUNNING)
"""The refresh's options, the face filter's among them, listed in that order; the command receives them as
keyword arguments for :func:`ingest_settings`."""


def ingest_settings(cache_dir: Path, download_media: bool, max_height: int, prune_downloads: bool,
                    cookies: Path | None, fetch_sleep: float, min_coverage: float, cue_pad: float, pin_core: bool,
                    batch_size: int, task_size: int, **face_filter: Any) -> tuple[IngestConfig, FacesConfig]:
    """The refresh's configuration from the values of :func:`ingest_options`."""
    from pipeline.ingest import IngestConfig

    base = IngestConfig()
    config = replace(base, cache_dir=cache_dir, batch_size=batch_size, task_size=task_size,
                     min_coverage=min_coverage, cue_pad_s=cue_pad, prune_downloads=prune_downloads,
                     fetch=replace(base.fetch, download_media=download_media, max_height=max_height,
                                   cookie_file=str(cookies.resolve()) if cookies else None, sleep_s=fetch_sleep))
    return config, faces_config(**face_filter, pin_core=pin_core)
