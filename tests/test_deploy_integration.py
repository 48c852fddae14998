"""Deploy to a real local Prefect server, trigger a refresh, watch selection and training follow.

Starts ``prefect server start`` (SQLite, own PREFECT_HOME), runs ``talkface
deploy``, starts one process worker per work pool (the "GPU" pool is served by
a CPU process worker here: there is no GPU; training uses the tiny config on
the CPU), triggers the refresh deployment once and waits for the automation
chain: refresh completes -> selection runs -> a new selection event -> training.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from fixtures.librivox import needs_librivox
from fixtures.prefect_server import AUTH, REPO, prefect_server, process_worker, server_env, wait_final_run

pytestmark = [pytest.mark.integration, needs_librivox]

def _tails(logs: list[Path]) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text()[-4000:]}" for log in logs if log.exists())


def test_refresh_triggers_selection_then_training_on_a_real_server(tmp_path: Path):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from flows.selection_flow import SELECTION_EVENT
    from pipeline.demo_corpus import build_demo_corpus
    from warehouse.store import Warehouse

    build_demo_corpus(tmp_path / "corpus", clips=2)
    home, warehouse = tmp_path / "prefect", tmp_path / "warehouse"
    with prefect_server(home) as api_url:
        with pytest.raises(urllib.error.HTTPError, match="401"):  # the API is protected by auth
            urllib.request.urlopen(f"{api_url}/deployments/filter", data=b"{}", timeout=5)
        deployed = subprocess.run(
            [str(Path(sys.executable).with_name("talkface")), "deploy", "--corpus", str(tmp_path / "corpus"),
             "--warehouse", str(warehouse), "--cron", "0 0 1 1 *", "--nmin", "1", "--nmax", "2", "--k", "5",
             "--report-dir", str(tmp_path / "reports"), "--runs-dir", str(tmp_path / "runs"),
             "--train-config", "tiny", "--train-steps", "3", "--train-device", "cpu"],
            env=server_env(home, api_url), cwd=REPO, capture_output=True, text=True, timeout=120)
        assert deployed.returncode == 0, deployed.stderr[-3000:]
        with (temporary_settings({PREFECT_API_URL: api_url, PREFECT_API_AUTH_STRING: AUTH}),
              get_client(sync_client=True) as client,
              process_worker(home, api_url, "talkface-cpu") as cpu_log,
              process_worker(home, api_url, "talkface-gpu") as gpu_log):
            refresh_dep = client.read_deployment_by_name("dataset-refresh/talkface-refresh")
            selection_dep = client.read_deployment_by_name("selection/talkface-selection")
            training_dep = client.read_deployment_by_name("training/talkface-training")
            assert [s.schedule.cron for s in refresh_dep.schedules] == ["0 0 1 1 *"]
            assert refresh_dep.work_pool_name == selection_dep.work_pool_name == "talkface-cpu"
            assert training_dep.work_pool_name == "talkface-gpu"

            run_deployment("dataset-refresh/talkface-refresh", timeout=0)
            logs = [cpu_log, gpu_log, home / "server.log"]
            finished = []
            for deployment in (refresh_dep, selection_dep, training_dep):  # each one starts the next
                finished.append(wait_final_run(client, deployment.id, lambda: _tails(logs)))
                assert finished[-1].state.type.value == "COMPLETED", (deployment.name, finished[-1].state.message)
            refreshed, selected, trained = finished

            recorded = Warehouse(warehouse).read("selections").to_pylist()
            assert len(recorded) == 1
            selection_id = recorded[0]["selection_id"]
            assert trained.parameters["selection_id"] == selection_id  # passed on by the event trigger
            assert trained.parameters["config"] == "tiny"
            assert selected.start_time >= refreshed.end_time and trained.start_time >= selected.end_time

            artifacts = {a.key: a for a in client.read_artifacts()}
            assert selection_id in artifacts["selection-summary"].data
            figure = artifacts["selection-histogram"].data
            assert base64.b64decode(figure.removeprefix("data:image/png;base64,"))[:8] == b"\x89PNG\r\n\x1a\n"
            events = client.request("POST", "/events/filter",
                                    json={"filter": {"event": {"name": [SELECTION_EVENT]}}}).json()["events"]
            assert [e["payload"]["selection_id"] for e in events] == [selection_id]

    assert (tmp_path / "reports" / f"report-{selection_id}.html").is_file()
    assert sorted(p.name for p in (tmp_path / "runs" / selection_id).glob("ckpt_*.pt")) == ["ckpt_00000003.pt"]
