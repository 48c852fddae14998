"""The production topology of docker-compose.yml, as processes: the deployed chain end to end on S3.

PostgreSQL (Prefect's database), a Prefect server with basic auth, an
S3-compatible endpoint (moto's server; MinIO in compose) holding the
warehouse, a Dask scheduler with two workers and a Prefect worker per pool,
each in a folder of its own (``tests/fixtures/topology.py``). The compose
file's ``deploy`` command creates the deployments; one triggered refresh runs
its compute tasks on the Dask workers and writes the warehouse on S3, the selection
follows it, and the training follows the selection, reading the selected
clips' feature shards from S3. The corpus, the selection report and the
training run folder are on S3 too: the Dask workers copy the media they decode
into their own caches, and the GPU worker trains in a cache copy of the run
folder and pushes what it wrote. No machine keeps anything but its cache.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from fixtures.librivox import needs_librivox
from fixtures.prefect_server import AUTH, REPO, wait_final_run
from fixtures.s3 import BUCKET
from fixtures.system_packages import needs_system_package
from fixtures.topology import POSTGRES_BIN, deploy, s3_objects, topology, upload

pytestmark = [pytest.mark.integration, needs_librivox,
              needs_system_package("postgresql", (POSTGRES_BIN / "initdb").is_file(), "Prefect's database")]

STAGE_TASKS = {"subtitles-compute": 1, "clips-compute": 1, "align-compute": 2, "histograms-compute": 1,
               "faces-compute": 2}
"""Task runs that the refresh submits to its task runner (the Dask cluster here): the costly stages one per
clip, the others one per batch."""
SEE_LOGS = "(the end of every service's log is in the captured stdout below)"


def _ran_on_dask(scheduler: str) -> dict[str, Counter]:
    """By Dask worker: how many tasks of each function it has run (from the workers' own transition logs)."""
    from distributed import Client

    def finished(dask_worker) -> Counter:
        keys = {str(e[0]) for e in dask_worker.state.log if len(e) > 2 and e[1:3] == ("executing", "memory")}
        return Counter(key.rsplit("-", 1)[0] for key in keys)  # Dask keys: <function>-<token>

    with Client(scheduler, timeout=10) as client:
        return client.run(finished)


def test_the_deployed_chain_runs_end_to_end_on_postgres_dask_and_s3(tmp_path: Path, monkeypatch):
    """Every check runs while the services are up: a failure prints their logs (``topology`` does)."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from flows.selection_flow import SELECTION_EVENT
    from pipeline.demo_corpus import build_demo_corpus
    from warehouse.store import Warehouse

    build_demo_corpus(tmp_path / "corpus", clips=2)
    repo_cache = sorted((REPO / "talkface-cache").rglob("*"))  # flow runs work in the checkout (the code dir)
    with topology(tmp_path / "services") as top:
        corpus = upload(top.s3_endpoint, tmp_path / "corpus", "corpus")
        corpus_objects = s3_objects(top.s3_endpoint, "corpus/")
        with pytest.raises(urllib.error.HTTPError, match="401"):  # the API is protected by auth
            urllib.request.urlopen(f"{top.api_url}/deployments/filter", data=b"{}", timeout=5)
        deployed = deploy(top, corpus=corpus, cron="0 0 1 1 *", aligner="pocketsphinx",
                          report_dir=f"s3://{BUCKET}/reports", runs_dir=f"s3://{BUCKET}/runs", code_dir=str(REPO),
                          nmin="1", nmax="2", train_config="tiny")
        assert deployed.returncode == 0, f"talkface deploy failed:\n{deployed.stderr[-3000:]}"

        with (temporary_settings({PREFECT_API_URL: top.api_url, PREFECT_API_AUTH_STRING: AUTH}),
              get_client(sync_client=True) as client):
            deployments = [client.read_deployment_by_name(name) for name in (
                "dataset-refresh/talkface-refresh", "selection/talkface-selection", "training/talkface-training")]
            assert deployments[0].parameters["warehouse_uri"] == top.warehouse
            assert deployments[0].job_variables["env"] == {"TALKFACE_DASK_ADDRESS": top.scheduler}
            assert [s.schedule.cron for s in deployments[0].schedules] == ["0 0 1 1 *"]
            assert [d.work_pool_name for d in deployments] == ["talkface-cpu", "talkface-cpu", "talkface-gpu"]

            run_deployment("dataset-refresh/talkface-refresh", timeout=0)
            finished = []
            for deployment in deployments:  # each one starts the next
                finished.append(wait_final_run(client, deployment.id, lambda: SEE_LOGS, limit_s=150))
                assert finished[-1].state.type.value == "COMPLETED", f"{deployment.name}: {finished[-1].state.message}"
            refreshed, selected, trained = finished
            task_runs = client.read_task_runs()
            artifacts = {a.key: a for a in client.read_artifacts()}
            events = client.request("POST", "/events/filter",
                                    json={"filter": {"event": {"name": [SELECTION_EVENT]}}}).json()["events"]

        on_dask = _ran_on_dask(top.scheduler)
        for key, value in top.values.items():  # the test reads the warehouse as the services do
            monkeypatch.setenv(key, value)
        store = Warehouse(top.warehouse)
        summary = {table: store.read(table).num_rows for table in ("clips", "phoneme_histograms", "clip_spans")}
        recorded = store.read("selections").to_pylist()
        shard_uris = store.read("feature_shards")["shard_uri"].to_pylist()
        keys = s3_objects(top.s3_endpoint)

        assert summary == {"clips": 2, "phoneme_histograms": 2, "clip_spans": 2}, summary
        ran = Counter(t.name for t in task_runs if t.flow_run_id == refreshed.id and t.name in STAGE_TASKS)
        assert ran == Counter(STAGE_TASKS), ran
        assert len(on_dask) == 2, on_dask
        on_either = sum(on_dask.values(), Counter())  # the tasks ran on the Dask workers, not in the flow's process
        assert on_either == Counter({"compute_task": sum(STAGE_TASKS.values())}), on_dask

        assert len(recorded) == 1, recorded
        selection_id = recorded[0]["selection_id"]
        assert trained.parameters["selection_id"] == selection_id  # passed on by the event trigger
        assert trained.parameters["config"] == "tiny"
        assert [e["payload"]["selection_id"] for e in events] == [selection_id]  # announced once
        # training starts on the selection's event, sent once the selection is recorded and before its report
        assert selected.start_time >= refreshed.end_time and trained.start_time >= selected.start_time
        assert selection_id in artifacts["selection-summary"].data
        assert (f"Trained on selection `{selection_id}` ({recorded[0]['n']} clips) to step 10"
                in artifacts["training-run"].data), artifacts["training-run"].data
        figure = artifacts["selection-histogram"].data
        assert base64.b64decode(figure.removeprefix("data:image/png;base64,"))[:8] == b"\x89PNG\r\n\x1a\n"

        # The warehouse, the feature shards, the report and the run folder live on S3 only; the media were
        # copied from S3 by the Dask workers that decoded them, into their own caches.
        assert any(k.startswith("warehouse/selections/_delta_log/") for k in keys), keys
        assert len(shard_uris) == 2 and {f"warehouse/{uri}" for uri in shard_uris} <= set(keys), (shard_uris, keys)
        assert {k: v for k, v in keys.items() if k.startswith("corpus/")} == corpus_objects, "the corpus changed"
        services = tmp_path / "services"
        assert not list(services.rglob("_delta_log")), "a Delta table was written to a local folder"
        cached = {p.relative_to(services).parts[0] for p in services.glob("*/talkface-cache/remote/*.mp4")}
        assert cached and cached <= {"dask-worker-1", "dask-worker-2"}, cached
        assert sorted((REPO / "talkface-cache").rglob("*")) == repo_cache, "a flow run cached media in the checkout"
        assert f"reports/report-{selection_id}.html" in keys and f"reports/histogram-{selection_id}.png" in keys
        run = sorted(k.removeprefix(f"runs/{selection_id}/") for k in keys if k.startswith(f"runs/{selection_id}/"))
        # the tiny config's whole schedule (10 steps), on the CPU here
        assert [k for k in run if k.startswith(("ckpt_", "generator_"))] == [
            "ckpt_00000010.pt", "generator_00000010.safetensors"], run
        local = [p for p in services.rglob("*") if p.is_file() and p.suffix in (".html", ".pt", ".safetensors")
                 and ".cache" not in p.parts]  # the GPU worker's working copy is in its ~/.cache
        assert local == [], "a report or run file was kept outside a cache"
