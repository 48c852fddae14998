"""Small faces (``TrackerConfig.small_faces``): the shared speaker pasted down into a 1920x1080 frame."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.faces_media import AOC, SUN, shared
from pipeline import faces
from pipeline.faces import FaceObservation, FaceTracker, TrackerConfig
from pipeline.pose import head_pose
from pipeline.video import probe_video, read_frames

WIDTH, HEIGHT = 1920, 1080
FACE_AT_FULL_SIZE = 320  # px: the speaker's landmark box height in her 512x512 frames


def _frames(path, n: int) -> list[np.ndarray]:
    return [rgb for _, rgb in read_frames(probe_video(shared(path)), stop=n)]


def _paste(rgb: np.ndarray, share: float, left: float = 0.4) -> tuple[np.ndarray, tuple[int, int, int]]:
    """``rgb`` scaled so its face is ``share`` of the height, on a grey 1920x1080 frame; and x0, y0, side."""
    import cv2

    side = round(rgb.shape[0] * share * HEIGHT / FACE_AT_FULL_SIZE)
    x0, y0 = int(left * WIDTH - side / 2), int(0.4 * HEIGHT - side / 2)
    out = np.full((HEIGHT, WIDTH, 3), 110, np.uint8)
    out[y0 : y0 + side, x0 : x0 + side] = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA)
    return out, (x0, y0, side)


def _track(frames: list[np.ndarray], config: TrackerConfig) -> list[FaceObservation]:
    with FaceTracker(config) as tracker:
        return [tracker.observe(rgb) for rgb in frames]


@pytest.mark.integration
@pytest.mark.parametrize("path", [AOC, SUN])
def test_big_faces_take_the_whole_frame_path_unchanged(path):
    frames = _frames(path, 60)
    before, after = (_track(frames, TrackerConfig(small_faces=small)) for small in (False, True))
    assert all(o.face_found for o in before)
    for old, new in zip(before, after, strict=True):
        assert (new.n_faces, new.bbox) == (old.n_faces, old.bbox)
        np.testing.assert_array_equal(new.landmarks, old.landmarks)


@pytest.mark.integration
def test_a_face_a_tenth_of_the_height_is_found_inside_its_square_and_posed_as_at_full_size():
    frames = _frames(AOC, 30)
    full = [head_pose(o.landmarks, 512, 512) for o in _track(frames, TrackerConfig())]
    pasted = [_paste(rgb, 0.07) for rgb in frames]
    canvases = [canvas for canvas, _ in pasted]
    assert not any(o.face_found for o in _track(canvases, TrackerConfig(small_faces=False)))  # the reported miss
    found = _track(canvases, TrackerConfig())
    assert sum(o.face_found for o in found) >= 0.9 * len(frames)  # 30 of 30 when measured
    errors = []
    for obs, (x0, y0, side), reference in zip(found, [where for _, where in pasted], full, strict=True):
        if obs.face_found:
            assert obs.n_faces == 1
            assert x0 <= obs.bbox[0] < obs.bbox[2] <= x0 + side and y0 <= obs.bbox[1] < obs.bbox[3] <= y0 + side
            pose = head_pose(obs.landmarks, WIDTH, HEIGHT)
            errors.append(
                max(abs(pose.yaw - reference.yaw), abs(pose.pitch - reference.pitch), abs(pose.roll - reference.roll))
            )
    # Measured: worst angle median 6.3, largest 13.2 degrees; the whole-frame path on the same speaker at 15 %
    # of the height (found there without the switch) is off by a median 5.4, largest 21.4.
    assert np.median(errors) < 10 and max(errors) < 20


def test_a_small_face_moving_across_the_frame_is_followed():
    """A wide shot of someone walking: a face a tenth of the height, 10 px a frame (250 px/s), from a fifth
    to half the width in 60 frames, stays found (its region follows it, or a search finds it again)."""
    pasted = [_paste(rgb, 0.10, left=0.2 + 0.0052 * k) for k, rgb in enumerate(_frames(AOC, 60))]
    found = _track([canvas for canvas, _ in pasted], TrackerConfig())
    inside = [obs.face_found and x0 <= obs.bbox[0] < obs.bbox[2] <= x0 + side
              and y0 <= obs.bbox[1] < obs.bbox[3] <= y0 + side
              for obs, (_, (x0, y0, side)) in zip(found, pasted, strict=True)]
    assert sum(inside) >= 0.9 * len(pasted)  # 100 of 100 when measured, at 4 and 10 px a frame


@pytest.mark.integration
def test_a_second_small_face_is_counted_and_a_frame_without_a_face_has_none():
    two = []
    for rgb in _frames(AOC, 30):
        canvas, _ = _paste(rgb, 0.10, left=0.3)
        mirrored, (x0, y0, side) = _paste(rgb[:, ::-1], 0.10, left=0.7)
        canvas[y0 : y0 + side, x0 : x0 + side] = mirrored[y0 : y0 + side, x0 : x0 + side]
        two.append(canvas)
    blank = np.full((HEIGHT, WIDTH, 3), 110, np.uint8)
    *counts, alone = [o.n_faces for o in _track([*two, blank], TrackerConfig(recount_every=1))]
    # The full-range detector misses one of two faces this small on some frames: 27 of 30 counted two when measured.
    assert min(counts) >= 1 and counts.count(2) >= 0.8 * len(counts)
    assert alone == 0


@pytest.mark.integration
def _counting_graphs(monkeypatch: pytest.MonkeyPatch, searched: list[int], found: list[bool]) -> list[str]:
    """The mediapipe graphs each tracker makes, by kind; each call of the full-range detector (the small-face
    search) appends the frame it searched to ``searched``."""
    made, make_mesh, make_detector = [], faces._face_mesh, faces._face_detector

    def mesh(config):
        made.append("mesh")
        return make_mesh(config)

    def detector(model, config):
        made.append(f"detector {model}")
        graph = make_detector(model, config)
        if model == 1:
            process = graph.process
            graph.process = lambda rgb: (searched.append(len(found)), process(rgb))[1]  # counts the real calls
        return graph

    monkeypatch.setattr(faces, "_face_mesh", mesh)
    monkeypatch.setattr(faces, "_face_detector", detector)
    return made


def test_a_clip_whose_face_the_mesh_always_finds_makes_no_small_face_graphs(monkeypatch: pytest.MonkeyPatch):
    """Making a graph costs a clip about 0.02 core-seconds (a whole tracker 0.08): the small-face search's two
    are made when the whole-frame mesh first misses a face, not for every clip."""
    searched: list[int] = []
    made = _counting_graphs(monkeypatch, searched, [])
    with FaceTracker(TrackerConfig()) as tracker:
        assert all(tracker.observe(rgb).face_found for rgb in _frames(AOC, 10))
        assert made == ["mesh", "detector 0"] and searched == []
        assert not tracker.observe(np.full((HEIGHT, WIDTH, 3), 110, np.uint8)).face_found
    assert made == ["mesh", "detector 0", "mesh", "detector 1"] and searched == [0]


def test_a_stretch_without_a_face_is_searched_every_recount_frames_and_a_small_face_found_late_by_less(
        monkeypatch: pytest.MonkeyPatch):
    blank = np.full((HEIGHT, WIDTH, 3), 110, np.uint8)
    frames = [blank] * 12 + [_paste(rgb, 0.07)[0] for rgb in _frames(AOC, 10)]
    searched: list[int] = []
    found: list[bool] = []
    _counting_graphs(monkeypatch, searched, found)
    with FaceTracker(TrackerConfig(recount_every=5)) as tracker:
        for rgb in frames:
            found.append(tracker.observe(rgb).face_found)
    assert [k for k in searched if k < 12] == [0, 5, 10]  # 3 of the 12 empty frames, not all 12
    assert found.index(True) == 15  # the face came at frame 12; the next search, at 15, found it
    assert all(found[15:])
