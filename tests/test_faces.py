"""Face tracking, crops and the per-clip faces stage on real video."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pytest

from fixtures.faces_media import AOC, SUN, aoc_measures, shared  # noqa: F401  (session fixture)
from pipeline.crops import CropConfig, crop, smooth_boxes
from pipeline.faces import FaceTracker, TrackerConfig, landmark_array
from pipeline.faces_stage import ClipInput, FacesConfig, process_clip
from pipeline.spans import SpanConfig
from warehouse.features import read_shard
from warehouse.location import Location
from warehouse.tables import table_spec


def _aoc_frames(n: int, size: int = 256) -> list[np.ndarray]:
    import cv2

    from pipeline.video import probe_video, read_frames

    info = probe_video(shared(AOC))
    return [cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA) for _, rgb in read_frames(info, stop=n)]


def _write_av(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    """An mp4 of ``frames`` with a quiet AAC tone as audio."""
    container = av.open(str(path), "w")
    video = container.add_stream("mpeg4", rate=fps)
    video.height, video.width = frames[0].shape[:2]
    video.pix_fmt = "yuv420p"
    audio = container.add_stream("aac", rate=16000)
    audio.layout = "mono"
    for k, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = k
        for packet in video.encode(frame):
            container.mux(packet)
    n = len(frames) * 16000 // fps
    tone = (0.1 * np.sin(2 * np.pi * 220 * np.arange(n) / 16000)).astype(np.float32)
    step = audio.codec_context.frame_size
    for i in range(0, n, step):
        chunk = av.AudioFrame.from_ndarray(tone[None, i:i + step], format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts, chunk.time_base = 16000, i, Fraction(1, 16000)
        for packet in audio.encode(chunk):
            container.mux(packet)
    for stream in (video, audio):
        for packet in stream.encode(None):
            container.mux(packet)
    container.close()
    return path


def test_landmarks_read_from_the_serialised_mesh_output_equal_the_point_by_point_read():
    from mediapipe.framework.formats import landmark_pb2
    from mediapipe.python.solutions import face_mesh

    with face_mesh.FaceMesh(static_image_mode=True) as mesh:
        found = mesh.process(_aoc_frames(1)[0]).multi_face_landmarks[0]
    by_point = np.array([(p.x, p.y, p.z) for p in found.landmark], np.float32)
    assert by_point.shape == (468, 3) and np.ptp(by_point[:, 0]) > 0.2
    np.testing.assert_array_equal(landmark_array(found), by_point)
    other = landmark_pb2.NormalizedLandmarkList()
    other.CopyFrom(found)
    other.landmark[5].visibility, other.landmark[9].z = 0.75, 0.0  # another layout: read point by point
    by_point[9, 2] = 0.0
    np.testing.assert_array_equal(landmark_array(other), by_point)


def test_smoothed_boxes_are_square_and_jitter_less():
    rng = np.random.default_rng(0)
    base = np.array([50.0, 40.0, 110.0, 120.0])
    boxes = base + rng.normal(0, 2.0, size=(60, 4))
    smooth = smooth_boxes(boxes, CropConfig(scale=1.5, smooth_sigma=2.0))
    sides = smooth[:, 2:] - smooth[:, :2]
    np.testing.assert_allclose(sides[:, 0], sides[:, 1])
    assert np.median(sides[:, 0]) == pytest.approx(80 * 1.5, rel=0.1)
    jitter = lambda b: np.abs(np.diff((b[:, :2] + b[:, 2:]) / 2, axis=0)).mean()  # noqa: E731
    assert jitter(smooth) < jitter(boxes) / 3
    with pytest.raises(ValueError, match="boxes"):
        smooth_boxes(np.array([[0.0, 0.0, np.nan, 1.0]]))


def test_crop_resizes_and_pads_with_black():
    image = np.zeros((100, 100, 3), np.uint8)
    image[:50, :50] = (255, 0, 0)
    out = crop(image, np.array([0.0, 0.0, 50.0, 50.0]), 112)
    assert out.shape == (112, 112, 3) and out.dtype == np.uint8
    assert (out[5:-5, 5:-5] == (255, 0, 0)).all()
    outside = crop(image, np.array([-50.0, -50.0, 50.0, 50.0]), 112)
    assert (outside[:50, :50] == 0).all() and (outside[60:100, 60:100] == (255, 0, 0)).all()


@pytest.mark.integration
def test_one_real_face_is_tracked_on_every_frame(aoc_measures):
    info, measures = aoc_measures
    assert len(measures) == 50
    assert all(m.observation.n_faces == 1 for m in measures)
    boxes = np.array([m.observation.bbox for m in measures])
    assert (boxes[:, :2] > 0).all() and (boxes[:, 2] < info.width).all() and (boxes[:, 3] < info.height).all()
    assert all(m.observation.landmarks.shape == (468, 3) for m in measures)


@pytest.mark.integration
@pytest.mark.parametrize(("recount_every", "counts"), [(1, [2] * 6), (5, [1, 1, 1, 1, 2, 2])])
def test_second_face_is_counted_and_the_track_stays_on_the_first(recount_every, counts):
    faces = _aoc_frames(8)
    blank = np.zeros_like(faces[0])
    with FaceTracker(TrackerConfig(recount_every=recount_every)) as tracker:
        first = tracker.observe(np.hstack([faces[0], blank]))
        assert first.n_faces == 1
        later = [tracker.observe(np.hstack([f, f[:, ::-1].copy()])) for f in faces[1:7]]
        alone_again = tracker.observe(np.hstack([faces[7], blank]))
        assert tracker.observe(np.full((256, 512, 3), 127, np.uint8)).n_faces == 0
    # A second face is counted within recount_every frames of its arrival, and no longer as soon as it leaves.
    assert [obs.n_faces for obs in later] == counts
    assert alone_again.n_faces == 1
    assert all(obs.bbox[2] <= 256 for obs in [*later, alone_again])  # still the left face


def test_one_face_tracker_never_counts_others():
    faces = _aoc_frames(2)
    with FaceTracker(TrackerConfig(max_faces=1, recount_every=1)) as tracker:
        counts = [tracker.observe(np.hstack([f, f[:, ::-1].copy()])).n_faces for f in faces]
    assert counts == [1, 1]
    with pytest.raises(ValueError, match="recount_every"):
        TrackerConfig(recount_every=0)


@pytest.mark.integration
def test_stage_keeps_a_real_speaker_and_writes_a_readable_shard(tmp_path):
    from pipeline.audio import decode_audio
    from pipeline.mfcc import mfcc_per_frame

    clip = ClipInput("aoc-0", shared(AOC), speaker_id="aoc", start_s=0.0, end_s=3.2)
    result = process_clip(clip, tmp_path, FacesConfig(span=SpanConfig(min_frames=70)))
    assert result.reject is None, result.reject
    for table in ("poses", "clip_spans", "feature_shards"):  # rows with exactly their table's columns
        names = set(table_spec(table).schema.names)
        assert result.rows[table] and all(set(r) == names for r in result.rows[table]), table
        assert pa.Table.from_pylist(result.rows[table], schema=table_spec(table).schema).num_rows
    assert len(result.rows["poses"]) == 80
    [span], [row] = result.rows["clip_spans"], result.rows["feature_shards"]
    assert row["n_frames"] == span["n_frames"] == span["end_frame"] - span["start_frame"] >= 70
    assert (row["speaker_id"], row["fps"]) == ("aoc", 25.0)
    assert row["shard_uri"] == "shards/aoc-0.npz"  # relative to the warehouse
    frames, mfcc = read_shard(row["shard_uri"], Location.of(tmp_path))
    assert frames.shape == (row["n_frames"], 112, 112, 3) and frames.dtype == np.uint8
    expected = mfcc_per_frame(decode_audio(AOC, end_s=3.2), span["end_frame"])[span["start_frame"]:]
    np.testing.assert_allclose(mfcc, expected, atol=1e-4)
    # The crop holds a face: skin-toned centre, not the blue/red flag background.
    centre = frames[:, 40:72, 40:72].reshape(-1, 3).mean(axis=0)
    assert centre[0] > centre[2]


def _runs_cut_after(valid: list[bool], frames: np.ndarray, boxes: np.ndarray, config: CropConfig):
    """``RunCrops`` fed the frames one by one, and the longest run as two passes would cut it (the oracle)."""
    from pipeline.crops import RunCrops
    from pipeline.spans import longest_run

    runs = RunCrops(config)
    for rgb, box, ok in zip(frames, boxes, valid, strict=True):
        runs.add(rgb, tuple(box) if ok else None)
    start, end = longest_run(np.array(valid))
    smoothed = smooth_boxes(boxes[start:end], config) if end > start else []
    oracle = [crop(frames[k], smoothed[k - start], config.size) for k in range(start, end)]
    return runs.finish(), (start, end, oracle)


@pytest.mark.parametrize("sigma", [2.0, 0.5, 0.0])
def test_crops_cut_in_one_pass_equal_the_span_cut_after_it_is_chosen(sigma):
    # runs of 1, 12, 18 (the longest), 18 again (a tie: the earlier stays), 3 frames to the end
    runs = [(True, 1), (False, 1), (True, 12), (False, 2), (True, 18), (False, 1), (True, 18), (False, 5), (True, 3)]
    valid = [ok for ok, n in runs for _ in range(n)]
    rng = np.random.default_rng(7)
    n = len(valid)
    frames = rng.integers(0, 256, (n, 48, 64, 3), dtype=np.uint8)
    centre = np.cumsum(rng.normal(0, 1.5, (n, 2)), axis=0) + [32, 24]
    side = 20 + rng.normal(0, 1, (n, 1))
    boxes = np.hstack([centre - side / 2, centre + side / 2])
    config = CropConfig(size=16, smooth_sigma=sigma)
    (start, end, crops), (want_start, want_end, oracle) = _runs_cut_after(valid, frames, boxes, config)
    assert (start, end) == (want_start, want_end) == (16, 34)
    assert len(crops) == 18 and all(c.shape == (16, 16, 3) and c.dtype == np.uint8 for c in crops)
    np.testing.assert_array_equal(np.stack(crops), np.stack(oracle))  # the same bytes, not merely close


def test_one_pass_crops_of_a_clip_without_a_valid_frame_are_empty():
    frames = np.zeros((5, 8, 8, 3), np.uint8)
    (start, end, crops), _ = _runs_cut_after([False] * 5, frames, np.zeros((5, 4)), CropConfig(size=4))
    assert (start, end, crops.shape) == (0, 0, (0, 4, 4, 3))


@pytest.mark.integration
def test_the_stage_decodes_once_and_its_shard_equals_crops_cut_from_a_second_decode(tmp_path):
    from pipeline.video import probe_video, read_frames

    clip = ClipInput("aoc-0", shared(AOC), speaker_id="aoc", start_s=1.0, end_s=4.2)
    config = FacesConfig(span=SpanConfig(min_frames=70))
    pinned = process_clip(clip, tmp_path / "pinned", config)
    floating = process_clip(clip, tmp_path / "floating", FacesConfig(span=config.span, pin_core=False))
    assert pinned.reject is None
    assert pinned.rows == floating.rows  # the core the mesh runs on changes nothing
    [span], [row] = pinned.rows["clip_spans"], pinned.rows["feature_shards"]
    frames, _ = read_shard(row["shard_uri"], Location.of(tmp_path / "pinned"))
    # the two-pass way: the span chosen from every frame's box, then decoded again and cut
    boxes = smooth_boxes(np.array([p["bbox"] for p in pinned.rows["poses"]][span["start_frame"]:span["end_frame"]]),
                         config.crop)
    first = 25  # start_s 1.0 at 25 fps
    again = read_frames(probe_video(shared(AOC)), 25.0, first + span["start_frame"], first + span["end_frame"])
    oracle = np.stack([crop(rgb, box, config.crop.size) for (_, rgb), box in zip(again, boxes, strict=True)])
    assert frames.shape[0] == row["n_frames"] >= 70
    np.testing.assert_array_equal(frames, oracle)


@pytest.mark.integration
def test_stage_rejects_two_faces_no_face_and_no_audio(tmp_path):
    config = FacesConfig(span=SpanConfig(min_frames=10))
    faces = _aoc_frames(12)
    two = _write_av(tmp_path / "two.mp4", [np.hstack([f, f[:, ::-1].copy()]) for f in faces])
    none = _write_av(tmp_path / "none.mp4", [np.full((128, 128, 3), 90, np.uint8)] * 12)
    results = {
        "two": process_clip(ClipInput("two", two), tmp_path, config),
        "none": process_clip(ClipInput("none", none), tmp_path, config),
        "sun": process_clip(ClipInput("sun", shared(SUN)), tmp_path, config),
        "missing": process_clip(ClipInput("missing", tmp_path / "missing.mp4"), tmp_path, config),
        "short": process_clip(ClipInput("short", none), tmp_path, FacesConfig()),
    }
    reasons = {cid: r.reject for cid, r in results.items()}
    assert {cid: reject.reason for cid, reject in reasons.items()} == {
        "two": "multiple_faces", "none": "no_face", "sun": "no_audio",
        "missing": "decode_error", "short": "too_short",
    }
    assert all(reject.stage == "faces" and reject.clip_id == cid for cid, reject in reasons.items())
    rejects = table_spec("rejects").schema
    assert all(set(reject.to_row(datetime.now(UTC))) == set(rejects.names) for reject in reasons.values())
    assert "sun.mp4" in reasons["sun"].detail and "missing.mp4" in reasons["missing"].detail
    assert len(results["two"].rows["poses"]) == 12  # measured frames are kept for the record
    assert all("feature_shards" not in r.rows for r in results.values())
    assert not list(tmp_path.rglob("*.npz"))
