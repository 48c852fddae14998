"""The one stage runner on a real Delta warehouse, with toy stages: what is pending, what is written, in which order."""

from __future__ import annotations

import pickle

import pytest

from pipeline.corpus import ClipSpec
from pipeline.refresh_stages import STAGES, RefreshSettings, stage_named
from pipeline.stage import (
    ClipResult,
    ClipWork,
    Reject,
    Stage,
    in_batches,
    pending,
    read_work,
    run_stages,
    write_results,
)
from warehouse.store import Warehouse

CLIPS = [ClipSpec(c, f"{c}.mp4") for c in ("a", "b", "c", "d")]


def cue(clip_id: str, n: int) -> dict[str, object]:
    return {"clip_id": clip_id, "cue": n, "start_s": float(n), "end_s": n + 1.0, "text": f"cue {n}"}


def subtitles(batch, settings) -> list[ClipResult | None]:
    """Two cues for a, one for b, c rejected, d waits (nothing written)."""
    out = {"a": ClipResult("a", {"subtitles": [cue("a", 0), cue("a", 1)]}),
           "b": ClipResult("b", {"subtitles": [cue("b", 0)]}),
           "c": ClipResult("c", {}, Reject("c", "subs", "no_subtitles", "c.mp4: no sidecar subtitle file")),
           "d": None}
    return [out[w.clip_id] for w in batch]


def outcome(work: ClipWork) -> ClipResult:
    """Per clip: one cue_outcomes row per subtitle cue, a histogram row for clips with two cues, else a reject
    (which still writes its outcomes)."""
    rows = work.rows["subtitles"]
    outcomes = [{"clip_id": work.clip_id, "cue": r["cue"], "status": "aligned"} for r in rows]
    if len(rows) < 2:
        return ClipResult(work.clip_id, {"cue_outcomes": outcomes},
                          Reject(work.clip_id, "count", "low_coverage", f"{work.clip_id}: one cue"))
    return ClipResult(work.clip_id, {"cue_outcomes": outcomes,
                                     "phoneme_histograms": [{"clip_id": work.clip_id, "n_phones": len(rows)}]})


SUBS = Stage("subs", (), ("subtitles",), subtitles)
COUNT = Stage("count", ("subtitles",), ("cue_outcomes", "phoneme_histograms"),
              lambda batch, settings: [outcome(w) for w in batch])


def test_pending_work_write_and_rerun(tmp_path):
    store = Warehouse(tmp_path / "wh")
    ids = [c.clip_id for c in CLIPS]
    assert pending(store, SUBS, ids) == ids
    assert pending(store, COUNT, ids) == []  # no input rows yet: nothing can run
    write_results(store, SUBS, SUBS.compute([ClipWork(c) for c in CLIPS], None))
    assert pending(store, SUBS, ids) == ["d"]  # written or rejected is done; a waiting clip is asked again
    assert pending(store, COUNT, ids) == ["a", "b"]
    work = read_work(store, COUNT, CLIPS[:2])
    assert [len(w.rows["subtitles"]) for w in work] == [2, 1] and work[0].rows["subtitles"][1]["text"] == "cue 1"
    write_results(store, COUNT, COUNT.compute(work, None))
    assert store.read("phoneme_histograms")["clip_id"].to_pylist() == ["a"]
    assert store.read("cue_outcomes")["clip_id"].to_pylist() == ["a", "a", "b"]  # the rejected clip's too
    rejects = {(r["clip_id"], r["stage"]): r["reason"] for r in store.read("rejects").to_pylist()}
    assert rejects == {("c", "subs"): "no_subtitles", ("b", "count"): "low_coverage"}
    versions = store.versions()
    run_stages(store, CLIPS, [SUBS, COUNT], None)  # only d is asked again, and it still waits
    assert store.versions() == versions


def test_rows_of_a_clip_are_replaced_not_added(tmp_path):
    store = Warehouse(tmp_path / "wh")
    write_results(store, SUBS, SUBS.compute([ClipWork(c) for c in CLIPS[:2]], None))
    write_results(store, COUNT, [outcome(w) for w in read_work(store, COUNT, CLIPS[:1])])
    shorter = ClipResult("a", {"cue_outcomes": [{"clip_id": "a", "cue": 0, "status": "failed"}],
                               "phoneme_histograms": [{"clip_id": "a", "n_phones": 1}]})
    write_results(store, COUNT, [shorter, None])
    assert [(r["cue"], r["status"]) for r in store.read("cue_outcomes").to_pylist()] == [(0, "failed")]
    assert store.read("phoneme_histograms")["n_phones"].to_pylist() == [1]


def test_a_rejected_clip_writes_no_done_marker_before_its_side_rows(tmp_path, monkeypatch):
    """Tables are written in the stage's order, rejects last: a writer stopped between them redoes the clip."""
    store = Warehouse(tmp_path / "wh")
    order = []
    for method in ("upsert", "replace_clips"):  # the real writes, each one noted as it commits
        real = getattr(store, method)
        monkeypatch.setattr(store, method, lambda name, *args, real=real: (real(name, *args), order.append(name)))
    write_results(store, COUNT, [outcome(ClipWork(CLIPS[0], {"subtitles": [cue("a", 0), cue("a", 1)]})),
                                 outcome(ClipWork(CLIPS[1], {"subtitles": [cue("b", 0)]}))])
    assert order == ["cue_outcomes", "phoneme_histograms", "rejects"]
    assert store.read("rejects")["clip_id"].to_pylist() == ["b"]


def test_the_refresh_stages_and_their_settings_cross_process_boundaries():
    """A Dask worker gets the stage's name and plain records: all of them pickle."""
    assert [s.name for s in STAGES] == ["subtitles", "clips", "align", "histograms", "faces"]
    assert [s.output for s in STAGES] == ["subtitles", "clips", "phone_alignments", "phoneme_histograms",
                                          "clip_spans"]
    settings = RefreshSettings("s3://bucket/wh")
    work = [ClipWork(CLIPS[0], {"clips": [{"clip_id": "a", "video_uri": "s3://bucket/corpus/a.mp4"}]})]
    assert pickle.loads(pickle.dumps((settings, work))) == (settings, work)
    assert stage_named("faces") is STAGES[-1] and not stage_named("faces").cacheable
    with pytest.raises(ValueError, match="unknown stage 'nope'; stages: subtitles, clips"):
        stage_named("nope")
    assert in_batches(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    for size in (0, -1):
        with pytest.raises(ValueError, match=f"at least 1, got {size}"):
            in_batches(list(range(5)), size)


def test_batches_of_a_stage_that_fetches_per_source_keep_each_source_whole(tmp_path):
    """Segments of one video either side of a batch boundary went to two batches, computed on two workers
    that both downloaded the video. The stages that fetch now keep a source's clips in one batch."""
    assert in_batches(list("aabbbca"), 3, together=str) == [["a", "a", "a"], ["b", "b", "b"], ["c"]]
    assert in_batches(list("abbbbc"), 3, together=str) == [["a"], ["b", "b", "b", "b"], ["c"]]  # a big group alone
    assert in_batches(list("abc"), 2, together=str) == [["a", "b"], ["c"]]
    sources = ["v1", "v1", "v2", "v2", "v2", "v1"]  # a segment list need not hold a video's clips together
    clips = [ClipSpec(f"c{i}", source) for i, source in enumerate(sources)]
    seen: list[list[str]] = []
    fetching = Stage("fetch", (), ("subtitles",), lambda batch, _: seen.append([w.clip.source for w in batch]) or [
        ClipResult(w.clip_id, {"subtitles": [cue(w.clip_id, 0)]}) for w in batch], whole_sources=True)
    run_stages(Warehouse(tmp_path / "wh"), clips, [fetching], None, batch_size=4)
    assert seen == [["v1", "v1", "v1"], ["v2", "v2", "v2"]]
    assert [s.whole_sources for s in STAGES] == [True, True, False, False, False]  # subtitles and clips fetch


def test_a_batch_is_computed_as_tasks_on_parallel_workers_and_written_once_in_order():
    from concurrent.futures import ThreadPoolExecutor

    from flows.batches import run_in_batches

    submitted, written = [], []
    with ThreadPoolExecutor(2) as pool:
        def submit(task: list[int]):
            submitted.append(task)
            return pool.submit(lambda: [10 * i for i in task])

        done = run_in_batches("toy", list(range(7)), batch_size=3, task_size=2, submit=submit,
                              write=lambda results: written.append((len(submitted), results)))
    assert done == 7
    assert submitted == [[0, 1], [2], [3, 4], [5], [6]]
    # every task submitted before the first write; one write per batch, its tasks' results joined, in order
    assert written == [(5, [0, 10, 20]), (5, [30, 40, 50]), (5, [60])]



def test_costly_stages_are_spread_over_tasks_but_mfa_still_aligns_a_batch_in_one_call():
    from pipeline.ingest import IngestConfig

    sphinx = RefreshSettings("wh", "pocketsphinx", IngestConfig(task_size=2))
    mfa = RefreshSettings("wh", "mfa", IngestConfig(task_size=2))
    assert {s.name: sphinx.task_size(s) for s in STAGES} == {
        "subtitles": None, "clips": None, "align": 2, "histograms": None, "faces": 2}
    assert mfa.task_size(stage_named("align")) is None and mfa.task_size(stage_named("faces")) == 2
