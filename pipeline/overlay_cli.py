"""``talkface overlay``: draw landmarks, pose and the kept span onto a clip."""

from __future__ import annotations

from pathlib import Path

import click

from cli_contract import configure_output, verbose_option


@click.command()
@click.argument("video", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--every", type=click.IntRange(min=1), default=5, show_default=True,
              help="Contact sheet: draw one frame in this many.")
@click.option("--columns", type=click.IntRange(min=1), default=6, show_default=True,
              help="Contact sheet: tiles per row.")
@click.option("--max-yaw", type=float, default=25.0, show_default=True, help="Valid-frame yaw limit, degrees.")
@click.option("--max-pitch", type=float, default=20.0, show_default=True, help="Valid-frame pitch limit, degrees.")
@click.option("--max-roll", type=float, default=25.0, show_default=True, help="Valid-frame roll limit, degrees.")
@click.option("--min-frames", type=click.IntRange(min=1), default=70, show_default=True,
              help="Shortest valid run that keeps a clip (the training sequence length).")
@click.option("--landmark-every", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="The face mesh on keyframes, as `talkface refresh --landmark-every N` runs it; "
                   "interpolated frames are labelled.")
@verbose_option
def overlay(video: Path, out: Path, every: int, columns: int, max_yaw: float, max_pitch: float,
            max_roll: float, min_frames: int, landmark_every: int, verbose: int) -> None:
    """Check the face filter by eye: write VIDEO with its landmarks (green on valid
    frames, red otherwise), yaw/pitch/roll, frame status and a green bar under the
    kept span. OUT ending in .png writes a contact sheet of every --every-th frame;
    .mp4 writes the whole clip at 25 fps. Nothing is written to the warehouse.
    """
    from pipeline.faces_stage import FacesConfig
    from pipeline.measure import KeyframeConfig
    from pipeline.overlay import OverlayConfig, render_overlay
    from pipeline.spans import SpanConfig
    from pipeline.video import VideoError

    configure_output(verbose)
    config = FacesConfig(span=SpanConfig(max_yaw=max_yaw, max_pitch=max_pitch, max_roll=max_roll,
                                         min_frames=min_frames), keyframes=KeyframeConfig(every=landmark_every))
    try:
        span = render_overlay(video, out, config, OverlayConfig(every=every, columns=columns))
    except (ValueError, VideoError) as exc:
        raise click.ClickException(str(exc)) from exc
    verdict = f"kept frames {span.start}-{span.end}" if span.reason is None else f"rejected: {span.reason}"
    click.echo(f"{video.name}: {verdict} ({span.detail}); wrote {out}")
