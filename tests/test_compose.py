"""docker-compose.yml validated by docker-compose (no Docker engine here: `config` only).

Needs Debian's ``docker-compose`` (``scripts/setup --tests`` installs it). The
compose file must run what ``tests/test_topology_integration.py`` proves: the
same commands and environment variables as ``tests/fixtures/topology.py``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fixtures.system_packages import needs_system_package
from fixtures.topology import BUCKET, COMMANDS, ENVIRONMENT, TEST_ONLY, command, service_env
from pipeline.cores import CORE_LOCKS_ENV

REPO = Path(__file__).resolve().parents[1]
COMPOSE = shutil.which("docker-compose")

pytestmark = needs_system_package("docker-compose", COMPOSE is not None, "validates the compose file")


def _config(project: Path) -> subprocess.CompletedProcess:
    shutil.copy(REPO / "docker-compose.yml", project / "docker-compose.yml")
    return subprocess.run([COMPOSE, "-f", "docker-compose.yml", "config"], cwd=project, capture_output=True,
                          text=True, timeout=60)


MIRRORED = {"prefect-server": "prefect-server", "dask-scheduler": "dask-scheduler", "dask-worker-1": "dask-worker",
            "dask-worker-2": "dask-worker", "cpu-worker": "cpu-worker", "gpu-worker": "gpu-worker", "deploy": "deploy"}
"""Compose service -> the topology fixture's service it must mirror."""
COMPOSE_VALUES = {
    "prefect-server": {"host": "0.0.0.0", "port": "4200"},
    "dask-scheduler": {"host": "0.0.0.0", "port": "8786", "dashboard": ":8787"},
    "dask-worker": {"scheduler": "tcp://dask-scheduler:8786", "scratch": "/scratch"},
    "deploy": {"corpus": "s3://talkface/corpus", "cron": "0 3 * * *", "aligner": "mfa",
               "scheduler": "tcp://dask-scheduler:8786", "report_dir": "s3://talkface/reports",
               "runs_dir": "s3://talkface/runs", "code_dir": "/app", "nmin": "5000", "nmax": "15114",
               "train_config": "paper"},
}
"""The addresses and paths compose fills in (with .env.example) where the test puts local ones."""
COMPOSE_ONLY_ENV = {"prefect-server": {"PREFECT_UI_API_URL"}, "gpu-worker": {"NVIDIA_VISIBLE_DEVICES"}}
"""Set by compose alone: the UI's address (the test runs without the UI) and the GPU runtime."""


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The compose file's services as ``docker-compose config`` resolves them with ``.env.example``."""
    project = tmp_path_factory.mktemp("compose")
    shutil.copy(REPO / ".env.example", project / ".env")
    done = _config(project)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)["services"]


def test_compose_file_is_valid_with_the_example_env_and_holds_every_service(services: dict):
    assert {"postgres", "prefect-server", "cpu-worker", "dask-scheduler", "dask-worker-1", "dask-worker-2", "minio",
            "minio-init", "gpu-worker", "deploy"} <= set(services)
    server = services["prefect-server"]["environment"]
    assert server["PREFECT_SERVER_API_AUTH_STRING"] == "admin:change-me-prefect"
    assert server["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://prefect:")
    for name in ("cpu-worker", "gpu-worker", "dask-worker-1", "dask-worker-2"):
        assert services[name]["environment"]["PREFECT_API_AUTH_STRING"] == "admin:change-me-prefect"
    gpu = services["gpu-worker"]
    assert gpu["runtime"] == "nvidia"
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    for name in ("cpu-worker", "dask-scheduler", "gpu-worker"):
        assert (REPO / services[name]["build"]["dockerfile"]).is_file()
    assert "mc mb --ignore-existing" in " ".join(services["minio-init"]["command"])


def test_compose_runs_the_commands_and_environment_of_the_topology_test(services: dict):
    assert set(MIRRORED.values()) == set(COMMANDS) == set(ENVIRONMENT)  # every fixture service is in compose
    for name, mirrored in MIRRORED.items():
        compose = services[name]
        assert compose["command"] == command(mirrored, **COMPOSE_VALUES.get(mirrored, {})), name
        expected_env = set(ENVIRONMENT[mirrored]) | COMPOSE_ONLY_ENV.get(name, set())
        assert set(compose.get("environment", {})) == expected_env, name
    client = services["cpu-worker"]["environment"]
    assert client["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert client["TALKFACE_WAREHOUSE"] == f"s3://{BUCKET}/warehouse"
    assert client["AWS_ENDPOINT_URL"] == "http://minio:9000"


def test_the_topology_test_sets_no_variable_compose_lacks_but_its_declared_test_only_ones(tmp_path: Path):
    """Its own folders, the checkout's code and faster polling (TEST_ONLY); everything else as compose."""
    values = {name: "value" for names in ENVIRONMENT.values() for name in names}
    for service, names in ENVIRONMENT.items():
        assert set(service_env(service, values, tmp_path / service)) == set(names) | set(TEST_ONLY), service


def test_compose_services_share_no_data_volume(services: dict):
    """As in the topology test: the object store (MinIO) is the only storage of data the services share; the
    Dask workers share a folder of core claims, lock files that keep them off each other's cores."""
    users: dict[str, list[str]] = {}
    for name, service in services.items():
        for volume in service.get("volumes", []):
            users.setdefault(volume.split(":")[0] if isinstance(volume, str) else volume["source"], []).append(name)
    assert set(users) == {"minio", "postgres", "core-locks"}  # the servers' own data; reports and runs are on S3
    assert {source: names for source, names in users.items() if len(names) > 1} == {
        "core-locks": ["dask-worker-1", "dask-worker-2"]}
    for name in users["core-locks"]:
        locks = services[name]["environment"][CORE_LOCKS_ENV]
        assert any(volume.startswith(f"core-locks:{locks}") for volume in services[name]["volumes"]), name


def test_compose_refuses_to_start_without_the_secrets(tmp_path: Path):
    done = _config(tmp_path)
    assert done.returncode != 0 and "in .env" in done.stderr


def test_the_image_of_the_dask_workers_makes_their_scratch_folder_for_its_user(services: dict):
    """The workers run as the MFA image's user, who cannot create a folder at the root: Dask's
    ``--local-directory`` must exist in the image, owned by that user, or every worker fails at start."""
    command = services["dask-worker-1"]["command"]
    scratch = command[command.index("--local-directory") + 1]
    image = services["dask-worker-1"]["image"]
    [build] = {s["build"]["dockerfile"] for s in services.values() if s.get("image") == image and "build" in s}
    assert re.search(rf'install -d -o "\$MAMBA_USER" {re.escape(scratch)}$', (REPO / build).read_text(), re.M)
