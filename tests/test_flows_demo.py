"""The end-to-end demo and the flows in Prefect's embedded mode (a temporary local API)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fixtures.librivox import needs_librivox
from fixtures.prefect_server import REPO
from warehouse.faults import FAULT_ENV

PRINTED = ("warehouse", "selection", "training run", "report", "histogram figure", "video")


@pytest.fixture(scope="module")
def prefect_api():
    """Prefect's own test harness: a temporary embedded API with its own database."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # telemetry locks the SQLite file
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield


@pytest.mark.integration
@needs_librivox
def test_demo_runs_the_whole_pipeline_and_prints_the_report_and_video(tmp_path: Path, prefect_api):
    from flows.demo_cli import demo
    from pipeline.video import probe_video
    from warehouse.store import Warehouse

    result = CliRunner().invoke(demo, ["--out", str(tmp_path / "demo"), "--clips", "2", "--steps", "3"])
    assert result.exit_code == 0, result.output
    printed = dict(line.split(": ", 1) for line in result.output.splitlines() if line.split(": ")[0] in PRINTED)
    report, video = Path(printed["report"]), Path(printed["video"])
    assert report.is_file() and "Phoneme histogram report" in report.read_text()
    assert Path(printed["histogram figure"]).read_bytes()[:4] == b"\x89PNG"
    info = probe_video(video)
    # the sample speaks the first demo clip: 7.08 s of LibriVox speech at 25 fps
    assert (info.width, info.height) == (112, 112) and abs(info.duration_s - 7.08) < 0.1
    store = Warehouse(tmp_path / "demo" / "warehouse")
    spans = store.read("clip_spans")["n_frames"].to_pylist()
    assert len(spans) == 2 and min(spans) >= 70
    assert printed["training run"].endswith("(step 3)")

    versions = store.versions()
    again = CliRunner().invoke(demo, ["--out", str(tmp_path / "demo"), "--clips", "2", "--steps", "3"])
    assert again.exit_code == 0, again.output
    reprinted = dict(line.split(": ", 1) for line in again.output.splitlines() if line.split(": ")[0] in PRINTED)
    assert reprinted == printed  # same selection, run folder at the same step, same files
    ingest_tables = {k: v for k, v in store.versions().items() if not k.startswith("selection")}
    assert ingest_tables == {k: v for k, v in versions.items() if not k.startswith("selection")}  # nothing re-ingested


def test_selection_flow_announces_only_a_new_selection_and_publishes_its_report(tmp_path: Path, prefect_api):
    from prefect.artifacts import Artifact

    from flows.selection_flow import selection
    from selection.demo_data import demo_histogram_table, demo_histograms
    from warehouse.store import Warehouse

    uri = str(tmp_path / "warehouse")
    Warehouse(uri).upsert("phoneme_histograms", demo_histogram_table(demo_histograms(40, seed=1)))
    first = selection(uri, str(tmp_path / "reports"), nmin=10, nmax=30, k=5, method="scan")
    again = selection(uri, str(tmp_path / "reports"), nmin=10, nmax=30, k=5, method="scan")
    other = selection(uri, str(tmp_path / "reports"), nmin=10, nmax=30, k=5, method="greedy")
    assert (first["new"], again["new"], other["new"]) == (True, False, True)
    assert first["selection_id"] == again["selection_id"] != other["selection_id"]
    assert 10 <= first["n"] <= 30 and Path(first["report"]).is_file()
    summary = Artifact.get("selection-summary")
    assert other["selection_id"] in summary.data and f"{other['distances']['tv']:.6f}" in summary.data
    assert Artifact.get("selection-histogram").data.startswith("data:image/png;base64,")


def announced(selection_id: str, wait_s: float = 10.0) -> int:
    """How many ``talkface.selection.created`` events the API holds for ``selection_id`` (events land shortly after)."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    from flows.selection_flow import SELECTION_EVENT

    wanted = EventFilter(event=EventNameFilter(name=[SELECTION_EVENT]),
                         resource=EventResourceFilter(id=[f"talkface.selection.{selection_id}"]))
    deadline = time.monotonic() + wait_s
    with get_client(sync_client=True) as client:
        while True:
            count = client.read_events(wanted, limit=10).total
            if count or time.monotonic() > deadline:
                return count
            time.sleep(0.5)


def test_a_selection_whose_report_fails_is_still_announced_once(tmp_path: Path, prefect_api, monkeypatch):
    """The selection is announced before its report, so a report that fails costs no announcement."""
    from flows.selection_flow import report_task, selection
    from selection.demo_data import demo_histogram_table, demo_histograms
    from warehouse.store import Warehouse

    uri, reports = str(tmp_path / "warehouse"), tmp_path / "reports"
    Warehouse(uri).upsert("phoneme_histograms", demo_histogram_table(demo_histograms(40, seed=2)))
    reports.write_text("a file where the report folder should be")
    monkeypatch.setattr(report_task, "retry_delay_seconds", [0])
    failed = selection(uri, str(reports), nmin=10, nmax=30, k=5, method="scan", return_state=True)
    assert failed.is_failed() and "reports" in failed.message
    recorded = Warehouse(uri).read("selections")["selection_id"].to_pylist()
    assert len(recorded) == 1
    reports.unlink()
    again = selection(uri, str(reports), nmin=10, nmax=30, k=5, method="scan")
    assert again["selection_id"] == recorded[0] and not again["new"] and Path(again["report"]).is_file()
    assert announced(recorded[0]) == 1  # before: 0, and training never started for it


SELECT = ("import sys\nfrom flows.selection_flow import selection\n"
          "selection(sys.argv[1], sys.argv[2], nmin=10, nmax=30, k=5)\n")
"""The selection flow as a process of its own (its arguments: the warehouse and the report folder)."""


def killed_selection(tmp_path: Path, fault: str) -> tuple[str, Path, str]:
    """A warehouse of demo histograms, and a selection flow run on this test's API SIGKILLed at ``fault``
    (:mod:`warehouse.faults`); returns the warehouse, the report folder and the id the run recorded."""
    from prefect.settings import PREFECT_API_URL

    from selection.demo_data import demo_histogram_table, demo_histograms
    from warehouse.store import Warehouse

    uri, reports = str(tmp_path / "warehouse"), tmp_path / "reports"
    Warehouse(uri).upsert("phoneme_histograms", demo_histogram_table(demo_histograms(40, seed=3)))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}, FAULT_ENV: fault,
           "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", SELECT, uri, str(reports)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == -signal.SIGKILL, run.stderr[-3000:]
    recorded = Warehouse(uri).read("selections")["selection_id"].to_pylist()
    assert len(recorded) == 1 and Warehouse(uri).read("selection_announcements").num_rows == 0
    return uri, reports, recorded[0]


def test_a_selection_killed_between_its_record_and_its_announcement_is_announced_by_the_rerun(tmp_path: Path,
                                                                                               prefect_api):
    from flows.selection_flow import selection

    uri, reports, recorded = killed_selection(tmp_path, "selections.committed")
    again = selection(uri, str(reports), nmin=10, nmax=30, k=5)
    assert again["selection_id"] == recorded and again["new"]  # before: known, so never announced
    assert announced(recorded) == 1
    assert not selection(uri, str(reports), nmin=10, nmax=30, k=5)["new"] and announced(recorded) == 1


def test_an_announcement_sent_by_a_run_killed_before_recording_it_is_not_sent_again(tmp_path: Path, prefect_api,
                                                                                    monkeypatch):
    """The API holds the event already: the rerun records it and sends nothing, so no second training starts."""
    from flows import selection_flow
    from warehouse.store import Warehouse

    uri, reports, recorded = killed_selection(tmp_path, "selection_announcements.commit")
    assert announced(recorded) == 1
    sent: list[tuple] = []
    monkeypatch.setattr(selection_flow, "emit_event", lambda *args, **kwargs: sent.append(args))
    again = selection_flow.selection(uri, str(reports), nmin=10, nmax=30, k=5)
    assert again["selection_id"] == recorded and sent == [] and announced(recorded) == 1
    assert Warehouse(uri).read("selection_announcements")["selection_id"].to_pylist() == [recorded]


def test_summary_markdown_holds_every_distance_and_the_bound():
    from selection.distances import DISTANCES
    from selection.report_summary import summary_markdown

    distances = {d: i / 10 for i, d in enumerate(DISTANCES)}
    info = {"selection_id": "abc", "method": "paper", "n": 7, "n_candidates": 20, "nmin": 5, "nmax": 9, "k": 3,
            "seed": 0, "distance": "tv", "input": "x", "distances": distances,
            "lower_bounds": {d: 0.01 for d in DISTANCES}}
    text = summary_markdown(info, Path("r.html"))
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0].split(" | ")[1:-1] == list(DISTANCES)[:-1]  # header after the first cell
    assert rows[1] == "| selection | " + " | ".join(f"{v:.6f}" for v in distances.values()) + " |"
    assert rows[2].startswith("| lower bound | 0.010000") and "`r.html`" in text
    assert "**7** clips out of 20" in text


def test_the_dask_address_selects_prefect_dasks_runner(monkeypatch):
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from flows.deployments import DASK_ADDRESS_ENV, task_runner_from_env

    monkeypatch.delenv(DASK_ADDRESS_ENV, raising=False)
    assert isinstance(task_runner_from_env(), ThreadPoolTaskRunner)
    monkeypatch.setenv(DASK_ADDRESS_ENV, "tcp://scheduler:8786")
    runner = task_runner_from_env()
    assert isinstance(runner, DaskTaskRunner) and runner.address == "tcp://scheduler:8786"


def test_the_deployment_without_dask_computes_on_as_many_threads_as_the_cli(monkeypatch, prefect_api):
    """Prefect's own thread pool is unbounded: the deployed refresh ran a whole batch's tasks at once
    (each with its own aligner and face mesh) where `talkface refresh` runs two."""
    import threading
    import time

    from prefect import flow, task

    from flows.deployments import DASK_ADDRESS_ENV, task_runner_from_env
    from flows.refresh import refresh

    monkeypatch.delenv(DASK_ADDRESS_ENV, raising=False)
    lock, running, most = threading.Lock(), [0], [0]

    @task
    def busy() -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.3)
        with lock:
            running[0] -= 1

    def most_at_once(runner) -> int:
        most[0] = 0
        flow(task_runner=runner)(lambda: [f.result() for f in [busy.submit() for _ in range(6)]])()
        return most[0]

    assert most_at_once(task_runner_from_env()) == most_at_once(refresh.task_runner) == 2


@pytest.mark.integration
def test_the_scheduled_refresh_runs_with_the_refresh_options_deploy_was_given(tmp_path: Path, prefect_api,
                                                                              monkeypatch):
    """The deployed refresh ran on the defaults whatever ``deploy`` was told: a corpus of YouTube ids never had
    its media downloaded (its clips stopped after their subtitles). Now the deployment holds the settings
    `talkface refresh` takes, and the flow run reads them back as its configuration."""
    from dataclasses import replace

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from flows.deploy_cli import deploy
    from flows.refresh import refresh
    from pipeline.faces_stage import FacesConfig
    from pipeline.ingest import IngestConfig
    from pipeline.measure import KeyframeConfig
    from pipeline.spans import SpanConfig

    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n")
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    done = CliRunner().invoke(deploy, [
        "--corpus", "voxceleb:meta", "--warehouse", str(tmp_path / "wh"), "--cron", "0 0 1 1 *",
        "--download-media", "--max-height", "480", "--cookies", str(cookies), "--min-coverage", "0.4",
        "--cue-pad", "0.8", "--landmark-every", "5", "--no-pin-core", "--batch-size", "10", "--cache-dir", "cache",
        "--max-yaw", "30", "--min-frames", "50"])
    assert done.exit_code == 0, done.output
    with get_client(sync_client=True) as client:
        stored = client.read_deployment_by_name("dataset-refresh/talkface-refresh").parameters
    parameters = refresh.validate_parameters(stored)
    base = IngestConfig()
    assert parameters["config"] == replace(
        base, cache_dir=Path("cache"), batch_size=10, min_coverage=0.4, cue_pad_s=0.8,
        fetch=replace(base.fetch, download_media=True, max_height=480, cookie_file=str(cookies)))
    assert parameters["faces"] == FacesConfig(span=SpanConfig(max_yaw=30.0, min_frames=50),
                                              keyframes=KeyframeConfig(every=5), pin_core=False)


@pytest.mark.integration
@needs_librivox
def test_a_bad_clip_is_rejected_but_a_stage_that_cannot_run_fails_the_flow(tmp_path: Path, prefect_api):
    from prefect.artifacts import Artifact

    from flows.refresh import refresh
    from pipeline.demo_corpus import build_demo_corpus
    from pipeline.ingest import IngestConfig
    from pipeline.prune import Pruned
    from warehouse.store import Warehouse

    corpus = tmp_path / "corpus"
    good = build_demo_corpus(corpus, clips=1)[0]
    (corpus / "broken.mp4").write_bytes(b"not a video at all")
    shutil.copy(good.with_suffix(".en.vtt"), corpus / "broken.en.vtt")

    summary = refresh(str(corpus), str(tmp_path / "ok"), config=IngestConfig(prune_downloads=True))
    assert (summary.clips_in, summary.histograms) == (2, 1)
    assert summary.rejected == {"clips: bad_media": 1}
    assert summary.pruned == Pruned() and "downloads removed: 0 file(s) of 0 source(s)" in summary.lines()[-1]
    published = Artifact.get("refresh-summary").data  # what a scheduled run did, in the Prefect UI
    assert "| clips in | 2 |" in published and "| &nbsp;&nbsp;clips: bad_media | 1 |" in published
    assert Warehouse(tmp_path / "ok").read("clip_spans")["clip_id"].to_pylist() == [good.stem]

    state = refresh(str(corpus), str(tmp_path / "no-mfa"), aligner_name="mfa", return_state=True)
    assert state.is_failed() and "mfa" in state.message
    assert Warehouse(tmp_path / "no-mfa").read("phone_alignments").num_rows == 0  # nothing half-aligned


@pytest.mark.integration
@needs_librivox
def test_refresh_on_a_local_dask_cluster_writes_what_the_thread_runner_writes(tmp_path: Path, prefect_api):
    """The scale-out path for real: batches pickled to two Dask worker processes, writes in the flow."""
    from prefect_dask import DaskTaskRunner

    from flows.refresh import refresh
    from pipeline.demo_corpus import build_demo_corpus
    from pipeline.ingest import IngestConfig
    from warehouse.store import Warehouse

    corpus = tmp_path / "corpus"
    build_demo_corpus(corpus, clips=2)
    config = IngestConfig(batch_size=1, cache_dir=tmp_path / "cache")  # one clip per batch: two batches in flight
    threads = refresh(str(corpus), str(tmp_path / "threads"), config=config)
    # A copy of the corpus: its files have other paths, so no batch comes from the task cache.
    shutil.copytree(corpus, tmp_path / "copy")
    on_dask = refresh.with_options(task_runner=DaskTaskRunner(
        cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True}))
    dask = on_dask(str(tmp_path / "copy"), str(tmp_path / "dask"), config=config)
    assert dask == threads and dask.histograms == 2
    for table in ("phoneme_histograms", "clip_spans"):
        rows = [Warehouse(tmp_path / name).read(table).sort_by("clip_id").to_pylist() for name in ("threads", "dask")]
        assert rows[0] == rows[1], table
