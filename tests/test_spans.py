"""The valid-frame rule, the longest valid run, and the filter on a real turning head."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fixtures.faces_media import carphone, carphone_measures  # noqa: F401  (session fixtures)
from pipeline.spans import (
    EXTREME_POSE,
    MULTIPLE_FACES,
    NO_FACE,
    OK,
    OUT_OF_FRAME,
    FrameFacts,
    SpanConfig,
    choose_span,
    frame_status,
    longest_run,
)

BOX = (40.0, 40.0, 80.0, 90.0)


def _facts(n_faces=1, yaw=0.0, pitch=0.0, roll=0.0, bbox=BOX) -> FrameFacts:
    return FrameFacts(n_faces, yaw, pitch, roll, bbox, width=176, height=144)


@pytest.mark.parametrize(
    "facts, status",
    [
        (_facts(), OK),
        (_facts(n_faces=0, bbox=None, yaw=math.nan), NO_FACE),
        (_facts(n_faces=2), MULTIPLE_FACES),
        (_facts(bbox=(-3.0, 40.0, 60.0, 90.0)), OUT_OF_FRAME),
        (_facts(bbox=(100.0, 40.0, 180.0, 90.0)), OUT_OF_FRAME),
        (_facts(yaw=-26.0), EXTREME_POSE),
        (_facts(yaw=24.9, pitch=-19.9, roll=24.9), OK),
        (_facts(pitch=21.0), EXTREME_POSE),
        (_facts(roll=-30.0), EXTREME_POSE),
        (_facts(yaw=math.nan), EXTREME_POSE),
    ],
)
def test_frame_status(facts, status):
    assert frame_status(facts, SpanConfig()) == status


def test_thresholds_are_configurable():
    assert frame_status(_facts(yaw=30.0), SpanConfig(max_yaw=35.0)) == OK
    assert frame_status(_facts(bbox=(2.0, 40.0, 60.0, 90.0)), SpanConfig(edge_margin=5.0)) == OUT_OF_FRAME


def test_bad_config_raises():
    with pytest.raises(ValueError, match="min_frames"):
        SpanConfig(min_frames=0)
    with pytest.raises(ValueError, match="max_yaw"):
        SpanConfig(max_yaw=-1.0)


@pytest.mark.parametrize(
    "flags, run",
    [
        ([], (0, 0)),
        ([0, 0, 0], (0, 0)),
        ([1, 1, 1], (0, 3)),
        ([0, 1, 1, 0, 1, 1, 1, 0], (4, 7)),
        ([1, 1, 0, 1, 1], (0, 2)),  # ties: the earliest run
        ([0, 0, 1], (2, 3)),
    ],
)
def test_longest_run(flags, run):
    assert longest_run(np.array(flags, dtype=bool)) == run


def test_choose_span_keeps_the_longest_run_when_long_enough():
    statuses = [NO_FACE] * 5 + [OK] * 80 + [EXTREME_POSE] * 3 + [OK] * 75
    decision = choose_span(statuses, SpanConfig())
    assert (decision.start, decision.end, decision.reason) == (5, 85, None)
    assert decision.n_frames == 80
    assert "no_face=5" in decision.detail


@pytest.mark.parametrize(
    "statuses, reason",
    [
        ([NO_FACE] * 100, NO_FACE),
        ([MULTIPLE_FACES] * 60 + [OK] * 40, MULTIPLE_FACES),
        ([OK] * 50 + [EXTREME_POSE] * 10 + [OK] * 50, "span_too_short"),
        ([OK] * 69, "span_too_short"),
    ],
)
def test_choose_span_names_the_reason(statuses, reason):
    decision = choose_span(statuses, SpanConfig())
    assert decision.reason == reason
    assert "need 70" in decision.detail


@pytest.mark.integration
def test_real_turning_head_drops_the_extreme_yaw_frames(carphone_measures):
    """carphone: the head swings past 20 degrees each way; those frames must go."""
    from pipeline.faces_stage import frame_facts

    info, measures = carphone_measures
    yaw = np.array([m.yaw for m in measures])
    assert yaw.min() < -15 and yaw.max() > 20  # the clip does swing both ways
    config = SpanConfig(max_yaw=15.0, max_pitch=30.0, max_roll=40.0, min_frames=20)
    statuses = [frame_status(f, config) for f in frame_facts(measures, info.width, info.height)]
    extreme = np.abs(yaw) > 15.0
    assert extreme.sum() >= 10
    assert all(s == EXTREME_POSE for s, e in zip(statuses, extreme) if e)
    assert all(s == OK for s, e in zip(statuses, extreme) if not e)
    decision = choose_span(statuses, config)
    assert decision.reason is None
    assert np.all(np.abs(yaw[decision.start:decision.end]) <= 15.0)
    # With the default limits the long frontal stretch at the start survives too.
    default = choose_span([frame_status(f, SpanConfig(min_frames=20))
                           for f in frame_facts(measures, info.width, info.height)], SpanConfig(min_frames=20))
    assert default.n_frames >= 20
