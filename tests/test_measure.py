"""Face and pose per frame: the face mesh on keyframes, the frames between interpolated where nothing moved."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fixtures.faces_media import AOC, aoc_corpus, aoc_measures, shared  # noqa: F401  (session fixture)
from pipeline.faces import FaceObservation, TrackerConfig
from pipeline.faces_stage import frame_facts
from pipeline.measure import FrameMeasure, KeyframeConfig, agree, interpolate, measure_frames, posed
from pipeline.spans import SpanConfig, choose_span, frame_status


def _measure(x: float, yaw: float, n_faces: int = 1, size: float = 100.0) -> FrameMeasure:
    landmarks = np.full((468, 3), x, np.float32)
    return FrameMeasure(FaceObservation(n_faces, landmarks, (x, 0.0, x + size, size)), yaw, 0.0, 0.0)


def test_frames_between_two_keyframes_are_interpolated_linearly():
    a, b = _measure(0.0, yaw=0.0), _measure(4.0, yaw=2.0)
    between = interpolate(a, b, 3)
    assert [m.yaw for m in between] == [0.5, 1.0, 1.5]
    assert [m.observation.bbox[0] for m in between] == [1.0, 2.0, 3.0]
    assert [float(m.observation.landmarks[0, 0]) for m in between] == [1.0, 2.0, 3.0]
    assert all(m.interpolated and m.observation.n_faces == 1 for m in between)
    assert not a.interpolated


@pytest.mark.parametrize(("b", "agrees"), [
    (_measure(4.0, yaw=2.9), True),
    (_measure(4.0, yaw=3.1), False),  # turned more than max_turn_deg
    (_measure(5.1, yaw=0.0), False),  # moved more than max_shift of the box's size
    (_measure(0.0, yaw=0.0, n_faces=2), False),  # another face counted
    (FrameMeasure(FaceObservation(0, None, None)), False),  # the face lost
    (FrameMeasure(FaceObservation(1, np.zeros((468, 3), np.float32), (0.0, 0.0, 100.0, 100.0))), False),  # no pose
])
def test_keyframes_agree_only_when_the_face_barely_moved(b: FrameMeasure, agrees: bool):
    config = KeyframeConfig(every=5, max_turn_deg=3.0, max_shift=0.05)
    assert agree(_measure(0.0, yaw=0.0), b, config) is agrees


def test_a_face_whose_landmarks_have_no_pose_is_an_invalid_frame_not_a_failed_clip():
    bad = FaceObservation(1, np.full((468, 3), np.nan, np.float32), (0.0, 0.0, 100.0, 100.0))
    measure = posed(bad, 256, 256)
    assert measure.observation is bad and math.isnan(measure.yaw)
    [facts] = frame_facts([measure], 256, 256)
    assert frame_status(facts, SpanConfig(edge_margin=0)) == "extreme_pose"
    good = posed(_measure(0.0, yaw=0.0).observation, 256, 256)  # flat landmarks still solve
    assert not math.isnan(good.yaw)


def test_a_keyframe_setting_that_cannot_work_is_refused():
    with pytest.raises(ValueError, match="every must be >= 1"):
        KeyframeConfig(every=0)


@pytest.mark.integration
def test_a_second_face_between_keyframes_is_found_by_measuring_halfway_down_to_the_frame_it_arrives():
    """Real tracker on the shared speaker: 5 frames alone, then 6 with a mirrored second face, keyframes every 5."""
    import cv2

    from pipeline.video import probe_video, read_frames

    info = probe_video(shared(AOC))
    face = cv2.resize(next(read_frames(info, stop=1))[1], (256, 256), interpolation=cv2.INTER_AREA)
    alone, pair = np.hstack([face, np.zeros_like(face)]), np.hstack([face, face[:, ::-1].copy()])
    frames = list(enumerate([alone] * 5 + [pair] * 6))
    measures = measure_frames(frames, 512, 256, TrackerConfig(recount_every=5), KeyframeConfig(every=5))
    assert [m.observation.n_faces for m in measures] == [1] * 5 + [2] * 6
    # keyframes 0, 5, 10: 0 and 5 disagree (one face, two), so 2 is measured: 0-2 agree (1 interpolated),
    # 2-5 do not: 3 is measured, then 4 (between 3 and 5); 5 and 10 agree (6-9 interpolated)
    assert [m.interpolated for m in measures] == [False, True] + [False] * 4 + [True] * 4 + [False]
    assert all(m.observation.bbox[2] <= 256 for m in measures)  # the track stays on the left face


def test_a_second_face_that_leaves_between_keyframes_is_still_counted_on_the_frames_it_is_in():
    """Real tracker: a second face on frames 0-2, gone from 3 on; the frames bisection measures after keyframe 5
    must be counted again, not given keyframe 5's count (one face) of a later frame."""
    import cv2

    from pipeline.video import probe_video, read_frames

    info = probe_video(shared(AOC))
    face = cv2.resize(next(read_frames(info, stop=1))[1], (256, 256), interpolation=cv2.INTER_AREA)
    blank, tracked = np.zeros_like(face), face[:, ::-1].copy()
    pair, alone = np.hstack([face, blank, tracked]), np.hstack([blank, blank, tracked])
    for present in (3, 8):
        frames = list(enumerate([pair] * present + [alone] * (11 - present)))
        measures = measure_frames(frames, 768, 256, TrackerConfig(recount_every=5), KeyframeConfig(every=5))
        assert [m.observation.n_faces for m in measures] == [2] * present + [1] * (11 - present), present
        assert all(m.observation.bbox[0] >= 512 for m in measures)  # the track stays on the right face


@pytest.mark.integration
def test_keyframes_on_a_real_speaker_keep_every_frame_status_and_stay_near_the_measured_pose(aoc_measures):
    from pipeline.video import read_frames

    info, every_frame = aoc_measures
    keyed = measure_frames(read_frames(info, stop=50), info.width, info.height, TrackerConfig(),
                           KeyframeConfig(every=5))
    assert len(keyed) == len(every_frame) == 50
    assert 0 < sum(m.interpolated for m in keyed) < 50
    assert not any(m.interpolated for m in keyed[::5]) and not keyed[-1].interpolated
    span = SpanConfig(min_frames=20)
    statuses = [[frame_status(f, span) for f in frame_facts(ms, info.width, info.height)]
                for ms in (every_frame, keyed)]
    assert statuses[0] == statuses[1]
    assert choose_span(statuses[0], span) == choose_span(statuses[1], span)
    worst = max(abs(getattr(a, angle) - getattr(b, angle))
                for a, b in zip(keyed, every_frame, strict=True) for angle in ("yaw", "pitch", "roll"))
    assert math.isfinite(worst) and worst < 6.0


@pytest.mark.integration
def test_the_faces_stage_with_keyframes_keeps_the_same_span_and_poses_close_to_every_frame(tmp_path):
    from pipeline.faces_stage import ClipInput, FacesConfig, process_clip

    clip = ClipInput("aoc-0", shared(AOC), speaker_id="aoc", start_s=0.0, end_s=3.2)
    span = SpanConfig(min_frames=70)
    every = process_clip(clip, tmp_path / "every", FacesConfig(span=span))
    keyed = process_clip(clip, tmp_path / "keyed", FacesConfig(span=span, keyframes=KeyframeConfig(every=5)))
    assert every.reject is None and keyed.reject is None
    assert keyed.rows["clip_spans"] == every.rows["clip_spans"]
    poses = list(zip(every.rows["poses"], keyed.rows["poses"], strict=True))
    assert len(poses) == 80 and all(a["n_faces"] == b["n_faces"] == 1 for a, b in poses)
    moved = [abs(a["yaw"] - b["yaw"]) for a, b in poses]
    assert 0 < max(moved) < 6.0  # interpolated frames differ from their own measurement, by little
    assert not any(a["interpolated"] for a, _ in poses)
    keyframes = [k for k, (_, b) in enumerate(poses) if not b["interpolated"]]
    assert set(range(0, 80, 5)) | {79} <= set(keyframes) and len(keyframes) < 80  # every 5th, the last, bisections


@pytest.mark.integration
def test_refresh_with_landmarks_on_keyframes_writes_the_keyframe_poses(tmp_path, aoc_measures):
    """``talkface refresh --landmark-every 5`` reaches the faces stage: its poses are the keyframe run's."""
    from click.testing import CliRunner
    from prefect.testing.utilities import prefect_test_harness

    from pipeline.video import read_frames
    from talkface_cli import cli
    from warehouse.store import Warehouse

    args = ["refresh", "--corpus", str(aoc_corpus(tmp_path / "corpus")), "--warehouse", str(tmp_path / "wh"),
            "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--landmark-every", "5"]
    with prefect_test_harness():
        run = CliRunner().invoke(cli, args)
    assert run.exit_code == 0, run.output
    warehouse = Warehouse(tmp_path / "wh")
    rows = sorted(warehouse.read("poses").to_pylist(), key=lambda r: r["frame"])
    yaw = [r["yaw"] for r in rows]
    info, every_frame = aoc_measures
    keyed = measure_frames(read_frames(info), info.width, info.height, TrackerConfig(), KeyframeConfig(every=5))
    assert yaw == pytest.approx([m.yaw for m in keyed], abs=1e-3)
    assert [r["interpolated"] for r in rows] == [m.interpolated for m in keyed]
    assert yaw[:50] != pytest.approx([m.yaw for m in every_frame], abs=1e-3)
    (span,) = warehouse.read("clip_spans").to_pylist()
    assert span["n_frames"] >= 70


def test_refresh_refuses_a_landmark_step_below_one():
    from click.testing import CliRunner

    from talkface_cli import cli

    run = CliRunner().invoke(cli, ["refresh", "--corpus", ".", "--landmark-every", "0"])
    assert run.exit_code == 2 and "--landmark-every" in run.output and "0 is not in the range x>=1" in run.output
