"""SIGKILL a refresh mid-run, run it again: the warehouse ends as an uninterrupted run leaves it.

Both runs are the real ``talkface refresh`` command (embedded Prefect) in a
subprocess on the offline demo corpus, one clip per atomic batch. The killed
run is stopped (with its whole process group) as soon as the align stage has
committed its first batch; the rerun must then leave every table with the same
rows as the uninterrupted run: no duplicate and no missing clip.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fixtures.librivox import needs_librivox
from fixtures.prefect_server import REPO

pytestmark = [pytest.mark.integration, needs_librivox]

TALKFACE = Path(sys.executable).with_name("talkface")
VOLATILE = {"rejects": ["at"]}  # wall-clock columns that differ between any two runs


def _command(corpus: Path, warehouse: Path) -> list[str]:
    return [str(TALKFACE), "refresh", "--corpus", str(corpus), "--warehouse", str(warehouse),
            "--batch-size", "1", "--no-progress", "--cache-dir", str(warehouse.parent / "cache")]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {**env, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def _refresh(corpus: Path, warehouse: Path, home: Path) -> None:
    done = subprocess.run(_command(corpus, warehouse), env=_env(home), cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def _killed_refresh(corpus: Path, warehouse: Path, home: Path) -> None:
    """Start a refresh and SIGKILL its process group once the align stage has committed a batch."""
    marker = warehouse / "phone_alignments" / "_delta_log"
    process = subprocess.Popen(_command(corpus, warehouse), env=_env(home), cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while not any(marker.glob("*1.json")) and process.poll() is None:
            time.sleep(0.05)
        assert process.poll() is None, "the refresh finished before it could be killed"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL


def _snapshot(warehouse: Path) -> dict[str, list[dict]]:
    """Every table's rows sorted by key, warehouse paths made relative, wall-clock columns dropped."""
    from warehouse.store import Warehouse
    from warehouse.tables import TABLES

    store = Warehouse(warehouse)
    out = {}
    for name, spec in TABLES.items():
        table = store.read(name).drop_columns(VOLATILE.get(name, []))
        rows = table.sort_by([(k, "ascending") for k in spec.key]).to_pylist()
        keys = [tuple(r[k] for k in spec.key) for r in rows]
        assert len(keys) == len(set(keys)), f"{name}: duplicate keys"
        for row in rows:
            if "shard_uri" in row:
                row["shard_uri"] = str(Path(row["shard_uri"]).relative_to(store.uri))
        out[name] = rows
    return out


def test_a_killed_refresh_rerun_ends_identical_to_an_uninterrupted_one(tmp_path: Path):
    from pipeline.demo_corpus import build_demo_corpus

    corpus = tmp_path / "corpus"
    build_demo_corpus(corpus, clips=3)
    whole, killed = tmp_path / "whole" / "warehouse", tmp_path / "killed" / "warehouse"
    _refresh(corpus, whole, tmp_path / "prefect-whole")
    _killed_refresh(corpus, killed, tmp_path / "prefect-killed")

    interrupted = _snapshot(killed)
    assert len({r["clip_id"] for r in interrupted["phone_alignments"]}) < 3 or not interrupted["clip_spans"]

    _refresh(corpus, killed, tmp_path / "prefect-killed")
    expected, got = _snapshot(whole), _snapshot(killed)
    assert len(expected["clip_spans"]) == 3 and not expected["rejects"]
    for name in expected:
        assert got[name] == expected[name], f"table {name} differs after the rerun"
    for row in expected["feature_shards"]:
        with np.load(whole / row["shard_uri"]) as a, np.load(killed / row["shard_uri"]) as b:
            assert sorted(a.files) == sorted(b.files)
            for key in a.files:
                assert np.array_equal(a[key], b[key]), f"{row['clip_id']}: shard array {key} differs"
