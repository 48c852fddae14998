"""Shared fixtures: demo histograms and a fresh warehouse per test."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


@pytest.fixture(scope="session")
def demo_15k():
    """The paper-sized demo corpus: 15,114 clips of realistic phone histograms."""
    from warehouse.demo import demo_histograms

    return demo_histograms(15114, seed=0)


@pytest.fixture
def warehouse_uri(tmp_path: Path) -> str:
    return str(tmp_path / "warehouse")
