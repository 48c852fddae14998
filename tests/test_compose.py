"""docker-compose.yml validated by docker-compose (no Docker engine here: `config` only).

Needs Debian's ``docker-compose`` (``scripts/setup --tests`` installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from fixtures.system_packages import needs_system_package

REPO = Path(__file__).resolve().parents[1]
COMPOSE = shutil.which("docker-compose")

pytestmark = needs_system_package("docker-compose", COMPOSE is not None, "validates the compose file")


def _config(project: Path) -> subprocess.CompletedProcess:
    shutil.copy(REPO / "docker-compose.yml", project / "docker-compose.yml")
    return subprocess.run([COMPOSE, "-f", "docker-compose.yml", "config"], cwd=project, capture_output=True,
                          text=True, timeout=60)


def test_compose_file_is_valid_with_the_example_env_and_holds_every_service(tmp_path: Path):
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    done = _config(tmp_path)
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert {"postgres", "prefect-server", "cpu-worker", "dask-scheduler", "dask-worker", "minio", "minio-init",
            "mfa-worker", "gpu-worker", "deploy"} <= set(services)
    server = services["prefect-server"]["environment"]
    assert server["PREFECT_SERVER_API_AUTH_STRING"] == "admin:change-me-prefect"
    assert server["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://prefect:")
    for name in ("cpu-worker", "mfa-worker", "gpu-worker", "dask-worker"):
        assert services[name]["environment"]["PREFECT_API_AUTH_STRING"] == "admin:change-me-prefect"
    gpu = services["gpu-worker"]
    assert gpu["runtime"] == "nvidia"
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    for name in ("cpu-worker", "dask-scheduler", "gpu-worker"):
        assert (REPO / services[name]["build"]["dockerfile"]).is_file()
    assert "mc mb --ignore-existing" in " ".join(services["minio-init"]["command"])


def test_compose_refuses_to_start_without_the_secrets(tmp_path: Path):
    done = _config(tmp_path)
    assert done.returncode != 0 and "in .env" in done.stderr
