"""The overlay tool: contact sheet and video of what the face filter saw."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cli_contract import NATIVE_NOISE
from fixtures.faces_media import carphone  # noqa: F401  (session fixture)
from pipeline.overlay import contact_sheet
from talkface_cli import cli


def test_contact_sheet_layout():
    tiles = [np.full((50, 100, 3), 40 * i, np.uint8) for i in range(5)]
    sheet = contact_sheet(tiles, columns=3, tile_width=60)
    assert sheet.shape == (2 * 30, 3 * 60, 3)
    assert sheet[0, 0, 0] == 0 and sheet[0, 60, 0] == 40 and sheet[30, 60, 0] == 160
    assert (sheet[30:, 120:] == 0).all()  # empty slot stays black


def test_cli_writes_sheet_and_video_with_the_kept_span(carphone, tmp_path):
    runner = CliRunner()
    png = tmp_path / "sheet.png"
    result = runner.invoke(cli, ["overlay", str(carphone), str(png), "--every", "20", "--columns", "5",
                                 "--max-yaw", "15", "--min-frames", "20"])
    assert result.exit_code == 0, result.output
    assert "kept frames" in result.output
    sheet = cv2.imread(str(png))
    assert sheet.shape[1] == 5 * 256 and sheet.shape[0] > 100
    # Tiles show frames 0, 20, ..., 80; kept ones carry a green bar, others red (BGR on disk).
    start, end = map(int, re.search(r"kept frames (\d+)-(\d+)", result.output).groups())
    bars = sheet[-2, 128::256]
    green = [bool(b[1] > 150 and b[2] < 60) for b in bars]
    assert green == [start <= k < end for k in range(0, 100, 20)]
    assert 0 < sum(green) < 5
    mp4 = tmp_path / "clip.mp4"
    assert runner.invoke(cli, ["overlay", str(carphone), str(mp4), "--min-frames", "20"]).exit_code == 0
    with av.open(str(mp4)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 100


@pytest.mark.parametrize("verbose", [False, True])
def test_overlay_is_quiet_unless_asked(carphone, tmp_path, verbose):
    """It logged at INFO and let mediapipe's native 'W0000 ...' lines through, unlike every other command."""
    args = ["overlay", str(carphone), str(tmp_path / "sheet.png"), "--min-frames", "20"] + (["-v"] if verbose else [])
    done = subprocess.run([sys.executable, "-c", "from talkface_cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    assert "kept frames" in done.stdout
    native = [line for line in done.stderr.splitlines() if re.match(NATIVE_NOISE, line)]
    logged = [line for line in done.stderr.splitlines() if line.startswith("INFO ")]
    assert bool(native) == bool(logged) == verbose, done.stderr


def test_cli_refuses_other_formats(carphone, tmp_path):
    result = CliRunner().invoke(cli, ["overlay", str(carphone), str(tmp_path / "x.gif")])
    assert result.exit_code != 0 and "x.gif" in result.output


def test_interpolated_frames_are_labelled(carphone):
    from pipeline.faces import TrackerConfig
    from pipeline.measure import KeyframeConfig, measure_frames
    from pipeline.overlay import draw_frame
    from pipeline.spans import SpanDecision
    from pipeline.video import probe_video, read_frames

    info = probe_video(carphone)
    frames = list(read_frames(info, stop=20))
    measures = measure_frames(frames, info.width, info.height, TrackerConfig(), KeyframeConfig(every=5))
    k = next(i for i, m in enumerate(measures) if m.interpolated)
    span = SpanDecision(0, 0, "span_too_short", "")
    labelled = draw_frame(frames[k][1], k, measures[k], "ok", span)
    plain = draw_frame(frames[k][1], k, replace(measures[k], interpolated=False), "ok", span)
    rows = np.flatnonzero((labelled != plain).any(axis=(1, 2)))
    assert rows.size and rows.max() < 40  # only the text lines at the top differ


def test_a_sheet_that_cannot_be_written_is_an_error_naming_it(carphone, tmp_path, capsys):
    """cv2.imwrite only returns False: the command said 'wrote' and exited 0 with no file."""
    from cli_contract import run_cli

    png = tmp_path / ("x" * 300 + ".png")  # longer than any file name may be
    assert run_cli(cli, "talkface", ["overlay", str(carphone), str(png), "--every", "50"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"talkface: error: {png}: could not write overlay: File name too long")
    assert list(tmp_path.iterdir()) == []
