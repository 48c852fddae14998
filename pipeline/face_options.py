"""The face filter's command-line options, shared by ``talkface overlay`` (which draws the filter's verdict on
a clip) and ``talkface refresh`` / ``deploy`` (which apply it), so that what the overlay shows with a setting
is what the refresh keeps with it. Kept free of heavy imports (``--help`` answers fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cli_contract import options

if TYPE_CHECKING:
    from pipeline.faces_stage import FacesConfig

face_filter_options = options(
    click.option("--max-yaw", type=click.FloatRange(min=0), default=25.0, show_default=True, metavar="DEGREES",
                 help="A frame whose head turns further than this either way is not valid (one cheek shows)."),
    click.option("--max-pitch", type=click.FloatRange(min=0), default=20.0, show_default=True, metavar="DEGREES",
                 help="A frame whose head tips further than this up or down is not valid."),
    click.option("--max-roll", type=click.FloatRange(min=0), default=25.0, show_default=True, metavar="DEGREES",
                 help="A frame whose head tilts further than this in the image plane is not valid (crops are "
                      "not rotated upright)."),
    click.option("--min-frames", type=click.IntRange(min=1), default=70, show_default=True, metavar="N",
                 help="A clip whose longest run of valid frames is shorter is rejected (70: the paper's "
                      "training sequence, 2.8 s at 25 fps)."),
    click.option("--landmark-every", type=click.IntRange(1), default=1, show_default=True, metavar="N",
                 help="Run the face mesh on every Nth frame only; the frames between two of them are "
                      "interpolated where the face barely moved (within 3 degrees and 5 percent of its size), "
                      "measured otherwise. Faster on still talking heads, poses a little less exact "
                      "(docs/faces.md); 1 measures every frame."),
)
"""The face filter's options; the command receives them as keyword arguments for :func:`faces_config`."""


def faces_config(max_yaw: float, max_pitch: float, max_roll: float, min_frames: int, landmark_every: int,
                 pin_core: bool = True) -> FacesConfig:
    """The faces stage's configuration from the values of :func:`face_filter_options`."""
    from pipeline.faces_stage import FacesConfig
    from pipeline.measure import KeyframeConfig
    from pipeline.spans import SpanConfig

    return FacesConfig(span=SpanConfig(max_yaw=max_yaw, max_pitch=max_pitch, max_roll=max_roll,
                                       min_frames=min_frames),
                       keyframes=KeyframeConfig(every=landmark_every), pin_core=pin_core)
