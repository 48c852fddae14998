"""The fault matrix of docs/reliability.md for the pipeline's writes, on real processes.

Every run is the real ``talkface refresh`` / ``select-samples`` command in a
subprocess on the offline demo corpus, one clip per atomic batch, reporting to
the session's Prefect server (``prefect_server``; each command would otherwise
start Prefect's embedded server, about 7 s a run), but where a test says it
runs on the embedded server, as a plain ``talkface refresh`` does. Faults are injected at named
points (:mod:`warehouse.faults`), so each kill lands exactly where it is meant
to. Every test ends with the warehouse compared row by row (and shard by shard)
with an undisturbed run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fixtures.librivox import needs_librivox
from fixtures.prefect_server import REPO
from warehouse.faults import FAULT_ENV

pytestmark = [pytest.mark.integration, needs_librivox]

BIN = Path(sys.executable).parent
# Columns that differ between any two histories: wall-clock times, and the table
# versions a selection read (with the id hashed from them), which count commits.
VOLATILE = {"rejects": ["at"], "selections": ["created_at", "input_versions", "selection_id"],
            "selection_members": ["selection_id"]}
NATIVE_NOISE = ("inference_feedback_manager", "absl::InitializeLog", "TensorFlow Lite")

# Where a refresh is killed, in pipeline order; each run resumes from the last one's state.
# ``name:n`` is the n-th commit of that table within the run (one clip per commit).
KILL_CHAIN = (
    "subtitles.committed:2",        # mid-stage: two of three clips' subtitles committed
    "clips.commit",                 # before the first probe commit of this run
    "cue_outcomes.committed",       # between a clip's cue outcomes and its phones
    "phone_alignments.committed:2",
    "phoneme_histograms.commit",
    "poses.committed",              # faces: poses written, shards and spans not yet
    "clip_spans.commit",            # shard files and rows committed, the spans that mark clips done not
)  # fmt: skip


def _env(home: Path, api: str | None, **extra: str) -> dict[str, str]:
    """The environment of a command reporting to the Prefect API ``api``; ``None``: its embedded server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != FAULT_ENV}
    prefect = {"PREFECT_API_URL": api} if api else {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return {**env, "PREFECT_HOME": str(home), **prefect, **extra}


def _refresh(corpus: Path, warehouse: Path, home: Path, api: str | None, *flags: str,
             **env: str) -> subprocess.Popen:
    command = [str(BIN / "talkface"), "refresh", "--corpus", str(corpus), "--warehouse", str(warehouse),
               "--batch-size", "1", "--no-progress", "--cache-dir", str(warehouse.parent / "cache"), *flags]
    return subprocess.Popen(command, env=_env(home, api, **env), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _finish(process: subprocess.Popen) -> tuple[int, str]:
    """Exit status and stderr; then the rest of its process group goes, as a supervisor would do.

    Prefect's embedded server runs as a child process that outlives a killed
    command (and holds its output pipes): a machine's death takes it too.
    """
    code = process.wait(timeout=300)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _, err = process.communicate(timeout=30)
    return code, err


def snapshot(warehouse: Path) -> dict[str, list[dict]]:
    """Every table's rows in key order, shard paths relative, wall-clock columns dropped; no duplicate keys."""
    from warehouse.store import Warehouse
    from warehouse.tables import TABLES

    store = Warehouse(warehouse)
    out = {}
    for name, spec in TABLES.items():
        table = store.read(name)
        keys = [tuple(r[k] for k in spec.key) for r in table.select(list(spec.key)).to_pylist()]
        assert len(keys) == len(set(keys)), f"{name}: duplicate keys"
        rows = table.drop_columns(VOLATILE.get(name, [])).to_pylist()
        for row in rows:
            if "shard_uri" in row and Path(row["shard_uri"]).is_relative_to(store.uri):
                row["shard_uri"] = str(Path(row["shard_uri"]).relative_to(store.uri))
        out[name] = rows
    return out


def assert_same_warehouse(got: Path, expected: Path, tables: tuple[str, ...] | None = None) -> None:
    want, have = snapshot(expected), snapshot(got)
    for name in tables or want:
        assert have[name] == want[name], f"table {name} differs from the undisturbed run"
    for row in want["feature_shards"] if tables is None else []:
        with np.load(expected / row["shard_uri"]) as a, np.load(got / row["shard_uri"]) as b:
            assert sorted(a.files) == sorted(b.files)
            for key in a.files:
                assert np.array_equal(a[key], b[key]), f"{row['clip_id']}: shard array {key} differs"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.demo_corpus import build_demo_corpus

    folder = tmp_path_factory.mktemp("corpus")
    build_demo_corpus(folder, clips=3)
    return folder


@pytest.fixture(scope="module")
def undisturbed(corpus: Path, prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A refresh and a selection that nothing disturbed (``refreshed`` beside it: before the selection).

    Its stderr is quiet: no native library lines without ``-v``.
    """
    root = tmp_path_factory.mktemp("undisturbed")
    code, err = _finish(_refresh(corpus, root / "warehouse", root / "prefect", prefect_server))
    assert code == 0, err[-3000:]
    assert not any(noise in err for noise in NATIVE_NOISE), err
    shutil.copytree(root / "warehouse", root / "refreshed")
    selected = _select(root / "warehouse", prefect_server)
    assert selected.returncode == 0, selected.stderr
    snap = snapshot(root / "warehouse")
    assert len(snap["clip_spans"]) == 3 and len(snap["feature_shards"]) == 3 and not snap["rejects"]
    assert len(snap["selections"]) == 1
    return root / "warehouse"


def _select(warehouse: Path, api: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "select-samples"), "--warehouse", str(warehouse), "--nmin", "1", "--nmax", "3"],
                          env=_env(warehouse.parent / "prefect", api, **env), capture_output=True, text=True,
                          timeout=120)


def test_a_refresh_killed_at_every_commit_point_reruns_to_the_undisturbed_warehouse(
        corpus: Path, undisturbed: Path, prefect_server: str, tmp_path: Path):
    """The first kill and the clean rerun run on Prefect's embedded server, as a plain ``talkface refresh``
    does, the kills between on the session's server."""
    warehouse, home = tmp_path / "warehouse", tmp_path / "prefect"
    for i, point in enumerate(KILL_CHAIN):
        api = None if i == 0 else prefect_server
        code, err = _finish(_refresh(corpus, warehouse, home, api, **{FAULT_ENV: point}))
        assert code == -signal.SIGKILL, f"not killed at {point} (exit {code}): {err[-2000:]}"
    code, err = _finish(_refresh(corpus, warehouse, home, None))
    assert code == 0, err[-3000:]
    assert _select(warehouse, prefect_server).returncode == 0
    assert_same_warehouse(warehouse, undisturbed)


def test_a_selection_killed_between_its_members_and_its_record_reruns_to_the_same_record(
        undisturbed: Path, prefect_server: str, tmp_path: Path):
    from warehouse.store import Warehouse

    warehouse = tmp_path / "warehouse"
    shutil.copytree(undisturbed.parent / "refreshed", warehouse)
    killed = _select(warehouse, prefect_server, **{FAULT_ENV: "selection_members.committed"})
    assert killed.returncode == -signal.SIGKILL
    store = Warehouse(warehouse)
    assert store.read("selection_members").num_rows and not store.read("selections").num_rows
    assert _select(warehouse, prefect_server).returncode == 0
    # Only the selection tables: a copied warehouse's shard rows still name the original's files.
    assert_same_warehouse(warehouse, undisturbed, tables=("selections", "selection_members"))


def test_two_refreshes_at_once_on_one_warehouse_both_finish_without_losing_or_duplicating_a_row(
        corpus: Path, undisturbed: Path, prefect_server: str, tmp_path: Path):
    """Delta's optimistic concurrency plus retried, idempotent writes."""
    warehouse = tmp_path / "shared" / "warehouse"
    first = _refresh(corpus, warehouse, tmp_path / "prefect-1", prefect_server)
    second = _refresh(corpus, warehouse, tmp_path / "prefect-2", prefect_server)
    (code_1, err_1), (code_2, err_2) = _finish(first), _finish(second)
    assert (code_1, code_2) == (0, 0), err_1[-2000:] + err_2[-2000:]
    assert _select(warehouse, prefect_server).returncode == 0
    assert_same_warehouse(warehouse, undisturbed)
