"""``talkface overlay``: draw landmarks, pose and the kept span onto a clip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli_contract import configure_output, verbose_option
from pipeline.face_options import face_filter_options, faces_config


@click.command()
@click.argument("video", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--every", type=click.IntRange(min=1), default=5, show_default=True,
              help="Contact sheet: draw one frame in this many.")
@click.option("--columns", type=click.IntRange(min=1), default=6, show_default=True,
              help="Contact sheet: tiles per row.")
@face_filter_options
@verbose_option
def overlay(video: Path, out: Path, every: int, columns: int, verbose: int, **face_filter: Any) -> None:
    """Check the face filter by eye: write VIDEO with its landmarks (green on valid
    frames, red otherwise), yaw/pitch/roll, frame status and a green bar under the
    kept span. OUT ending in .png writes a contact sheet of every --every-th frame;
    .mp4 writes the whole clip at 25 fps; with --landmark-every, interpolated frames
    are labelled. The filter's options are those of `talkface refresh`: what the
    overlay shows with them is what a refresh keeps. Nothing is written to the
    warehouse.
    """
    from pipeline.overlay import OverlayConfig, render_overlay
    from pipeline.video import VideoError

    configure_output(verbose)
    config = faces_config(**face_filter)
    try:
        span = render_overlay(video, out, config, OverlayConfig(every=every, columns=columns))
    except (ValueError, VideoError) as exc:
        raise click.ClickException(str(exc)) from exc
    verdict = f"kept frames {span.start}-{span.end}" if span.reason is None else f"rejected: {span.reason}"
    click.echo(f"{video.name}: {verdict} ({span.detail}); wrote {out}")
