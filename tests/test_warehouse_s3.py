"""The warehouse, its feature shards and the flows on S3-compatible object storage, by URI alone
(moto's S3 server: :mod:`fixtures.s3`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.librivox import needs_librivox
from fixtures.s3 import s3_endpoint, s3_env  # noqa: F401  (fixtures)

pytest.importorskip("moto.server", reason="moto[server] provides the local S3-compatible endpoint")

pytestmark = pytest.mark.integration


def test_upserts_versions_and_reads_work_on_s3(s3_env, request):
    from test_warehouse_store import histograms

    from warehouse.store import Warehouse

    store = Warehouse(f"s3://talkface/{request.node.name}")
    first = store.upsert("phoneme_histograms", histograms(["a", "b"], 1))
    store.upsert("phoneme_histograms", histograms(["b", "c"], 2))
    store.upsert("phoneme_histograms", histograms(["b", "c"], 2))
    rows = {r["clip_id"]: r["n_phones"] for r in store.read("phoneme_histograms").to_pylist()}
    assert rows == {"a": 39, "b": 78, "c": 78}
    assert store.read("phoneme_histograms", version=first).num_rows == 2
    assert store.delete("phoneme_histograms", {"clip_id": ["a", "c"]}) == 2
    assert store.read("phoneme_histograms")["clip_id"].to_pylist() == ["b"]
    assert store.uri == f"s3://talkface/{request.node.name}"


def test_select_samples_and_the_report_run_on_an_s3_warehouse(s3_env, request, tmp_path, capsys):
    from click.testing import CliRunner

    from cli_contract import run_cli
    from selection.cli import select_samples
    from selection.demo_data_cli import demo_data
    from selection.report_cli import report
    from warehouse.store import Warehouse

    uri = f"s3://talkface/{request.node.name}"
    assert CliRunner().invoke(demo_data, ["--clips", "300", "--warehouse", uri]).exit_code == 0
    assert run_cli(select_samples, "select-samples", ["--warehouse", uri, "--nmin", "50", "--nmax", "200",
                                                      "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["input_versions"] == {"phoneme_histograms": Warehouse(uri).version("phoneme_histograms")}
    out = tmp_path / "report.html"
    result = CliRunner().invoke(report, ["--warehouse", uri, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert info["selection_id"] in out.read_text()


@pytest.fixture
def flaky_s3(s3_endpoint, monkeypatch):
    """The S3 endpoint behind a proxy that the test takes down and brings back (moto keeps its state)."""
    from urllib.parse import urlsplit

    from fixtures.flaky_proxy import FlakyProxy

    target = urlsplit(s3_endpoint)
    proxy = FlakyProxy((target.hostname, target.port))
    for key, value in {"AWS_ENDPOINT_URL": proxy.endpoint, "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
                       "AWS_ALLOW_HTTP": "true"}.items():
        monkeypatch.setenv(key, value)
    return proxy


def _select_samples(uri: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name("select-samples")), "--warehouse", uri,
                           "--nmin", "50", "--nmax", "200", "--json"], capture_output=True, text=True, timeout=300)


def test_an_endpoint_that_drops_connections_for_a_while_is_retried_with_backoff(flaky_s3, request):
    from test_warehouse_store import histograms

    from warehouse.store import Warehouse

    store = Warehouse(f"s3://talkface/{request.node.name}")
    store.upsert("phoneme_histograms", histograms(["a", "b"], 1))
    flaky_s3.down(connections=3)
    store.upsert("phoneme_histograms", histograms(["c"], 2))
    assert flaky_s3.reset == 3
    assert sorted(store.read("phoneme_histograms")["clip_id"].to_pylist()) == ["a", "b", "c"]


def test_an_endpoint_down_fails_the_command_in_one_line_and_a_rerun_completes(flaky_s3, request):
    from selection.demo_data import demo_histogram_table, demo_histograms
    from warehouse.store import Warehouse

    uri = f"s3://talkface/{request.node.name}"
    Warehouse(uri).upsert("phoneme_histograms", demo_histogram_table(demo_histograms(300)))
    flaky_s3.down()
    failed = _select_samples(uri)
    assert failed.returncode == 2 and not failed.stdout
    assert failed.stderr.count("\n") == 1, failed.stderr
    assert failed.stderr.startswith(f"select-samples: error: warehouse {uri}, table ")
    assert "Connection reset by peer" in failed.stderr and "retries" in failed.stderr
    assert flaky_s3.reset > 6  # the first request and its retries, at least

    flaky_s3.up()
    done = _select_samples(uri)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    store = Warehouse(uri)
    assert store.read("selections")["selection_id"].to_pylist() == [info["selection_id"]]
    assert store.read("selection_members").num_rows == info["n"]


def test_features_live_under_the_warehouse_on_s3_and_training_streams_them(s3_env, request, tmp_path):
    """Shards written to an s3:// warehouse, named relative to it, the same bytes as on a local disk,
    read back whole, by window and by the training stream."""
    from fixtures.training_shards import synthetic_clip
    from training.data import ShardStream, clips_from_manifest
    from warehouse.features import ShardRecord, open_shard, read_shard, records_to_table, write_shard
    from warehouse.location import Location
    from warehouse.manifest import build_manifest
    from warehouse.store import Warehouse

    store = Warehouse(f"s3://talkface/{request.node.name}")
    clips = {f"c{i}": synthetic_clip(12, seed=i) for i in range(2)}
    records = [ShardRecord(cid, None, 0, 12, 25.0, write_shard(store.location, cid, *arrays))
               for cid, arrays in clips.items()]
    store.upsert("feature_shards", records_to_table(records))
    assert [r.shard_uri for r in records] == ["shards/c0.npz", "shards/c1.npz"]
    manifest = build_manifest(store)
    assert manifest["shard_uri"].to_pylist()[0] == f"{store.uri}/shards/c0.npz"
    uri = manifest["shard_uri"].to_pylist()[1]
    local = tmp_path / write_shard(Location.of(tmp_path), "c1", *clips["c1"])
    assert Location.of(uri).read_bytes() == local.read_bytes()
    frames, _ = read_shard(uri)
    assert (frames == clips["c1"][0]).all()
    with open_shard(uri) as shard:
        assert (shard.frames(3, 10) == frames[3:10]).all() and (shard.mfcc(3, 10) == clips["c1"][1][3:10]).all()
    batch = ShardStream(clips_from_manifest(manifest, seq_len=8), batch_size=2, seq_len=8, seed=0).batch(0)
    assert tuple(batch["frames"].shape) == (2, 8, 112, 112, 3)



def test_a_shard_on_s3_is_uploaded_and_read_by_window_in_memory_that_does_not_grow_with_it(s3_env, request):
    """The upload goes through a local temporary file, not a buffer in memory, and a 70-frame window is read
    by range: from a 300- to a 1300-frame shard (+38 MB of frames) neither peak grows by a tenth of that.
    (moto moves some 15 MB/s, too slow for test_shards' 5-minute shard.) Measured in a child process:
    moto's server runs in this one, and tracemalloc would count what it holds."""
    script = ("import json, sys; sys.path.insert(0, 'tests'); from fixtures.training_shards import shard_memory_peaks; "
              "from warehouse.location import Location; root = Location.of(sys.argv[1]); "
              "print(json.dumps([shard_memory_peaks(root, n) for n in (300, 1300)]))")
    done = subprocess.run([sys.executable, "-c", script, f"s3://talkface/{request.node.name}"],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    short, long = json.loads(done.stdout)
    for what in ("write", "window"):
        assert long[what] - short[what] < (long["frames"] - short["frames"]) / 10, (short, long)


def test_a_warehouse_prefix_with_a_space_or_a_non_ascii_letter_holds_its_shards_beside_its_tables(
        s3_env, s3_endpoint, request):
    """``s3://bucket/my corpus é``: delta-rs stores the tables under that key; the shards went nowhere
    ("Cannot parse URI" from pyarrow) before, so such a warehouse could never hold features."""
    import boto3

    from fixtures.training_shards import synthetic_clip
    from warehouse.features import ShardRecord, read_shard, records_to_table, write_shard
    from warehouse.manifest import build_manifest
    from warehouse.store import Warehouse

    prefix = f"{request.node.name[:20]}/my corpus é日"
    store = Warehouse(f"s3://talkface/{prefix}")
    frames, mfcc = synthetic_clip(4, seed=3)
    record = ShardRecord("c0", None, 0, 4, 25.0, write_shard(store.location, "c0", frames, mfcc))
    store.upsert("feature_shards", records_to_table([record]))
    read, _ = read_shard(build_manifest(store)["shard_uri"][0].as_py())
    assert (read == frames).all()
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                      region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="talkface", Prefix=f"{prefix}/")["Contents"]]
    assert f"{prefix}/shards/c0.npz" in keys
    assert any(k.startswith(f"{prefix}/feature_shards/_delta_log/") for k in keys)


@pytest.mark.parametrize("mark", ["#", "?"])
def test_a_hash_or_question_mark_in_an_s3_warehouse_uri_is_refused_not_cut_off(s3_env, request, mark):
    """delta-rs ends an object-store path at ``#`` or ``?``: ``run#1`` and ``run#2`` both wrote their
    tables to ``run``, each reading the other's rows. Written percent-encoded, it stays in the key."""
    from test_warehouse_store import histograms

    from warehouse.store import Warehouse

    root = f"s3://talkface/{request.node.name[:40]}"
    with pytest.raises(ValueError, match=f"tables would go to {root}/run; write it as"):
        Warehouse(f"{root}/run{mark}1")
    encoded = {"#": "%23", "?": "%3F"}[mark]
    one, two = Warehouse(f"{root}/run{encoded}1"), Warehouse(f"{root}/run{encoded}2")
    one.upsert("phoneme_histograms", histograms(["a"], 1))
    two.upsert("phoneme_histograms", histograms(["b"], 1))
    assert one.read("phoneme_histograms")["clip_id"].to_pylist() == ["a"]
    assert Warehouse(f"{root}/run").version("phoneme_histograms") is None

@needs_librivox
def test_refresh_selection_and_training_run_on_s3_with_no_local_folder(s3_env, request, tmp_path, monkeypatch):
    """Corpus, warehouse, shards, reports and run folders all on S3; locally only the cache."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.refresh import refresh
    from flows.selection_flow import selection
    from flows.training_flow import training
    from pipeline.demo_corpus import build_demo_corpus
    from pipeline.ingest import IngestConfig
    from warehouse.location import Location, copy_file
    from warehouse.store import Warehouse

    root = Location.of(f"s3://talkface/{request.node.name}")
    local = tmp_path / "made-here"
    for video in build_demo_corpus(local, 2):
        for path in video.parent.glob(f"{video.stem}.*"):
            copy_file(Location.of(path), root.join("corpus", path.name))
    shutil.rmtree(local)
    cache = tmp_path / "cache"
    monkeypatch.chdir(tmp_path)
    with prefect_test_harness():
        summary = refresh(root.join("corpus").uri, root.join("wh").uri, config=IngestConfig(cache_dir=cache))
        chosen = selection(root.join("wh").uri, root.join("reports").uri, nmin=1, nmax=2, k=5, method="paper")
        trained = training(root.join("wh").uri, root.join("runs").uri, chosen["selection_id"], config="tiny",
                           steps=2, device="cpu", cache_dir=str(cache))
        # a run that fails after training (its sample image is missing) has pushed its checkpoints already
        with pytest.raises(ValueError, match="missing.png"):
            training(root.join("wh").uri, root.join("runs").uri, chosen["selection_id"], config="tiny", steps=4,
                     device="cpu", cache_dir=str(cache), sample_image=str(tmp_path / "missing.png"),
                     sample_audio=str(tmp_path / "missing.wav"))
        # the same selection in another run folder starts afresh: it does not resume from the first's working copy
        other = training(root.join("wh").uri, root.join("runs2").uri, chosen["selection_id"], config="tiny",
                         steps=2, device="cpu", cache_dir=str(cache))
    assert (summary.clips_in, summary.histograms, summary.spans) == (2, 2, 2), summary.lines()
    store = Warehouse(root.join("wh").uri)
    names = store.read("feature_shards")["shard_uri"].to_pylist()
    assert len(names) == 2 and all(n.startswith("shards/") for n in names)
    assert all((root.join("wh", n).size() or 0) > 0 for n in names), "a named shard is missing on S3"
    assert store.read("clips")["video_uri"].to_pylist()[0].startswith(f"{root.uri}/corpus/")
    assert chosen["report"] == root.join("reports", f"report-{chosen['selection_id']}.html").uri
    assert b"Phoneme histogram report" in Location.of(chosen["report"]).read_bytes()
    run = Location.of(trained.run_dir)
    assert run.uri == root.join("runs", chosen["selection_id"]).uri and trained.step == 2
    assert {"ckpt_00000002.pt", "generator_00000002.safetensors", "ckpt_00000004.pt"} <= set(run.file_sizes())
    assert other.step == 2 and "ckpt_00000004.pt" not in Location.of(other.run_dir).file_sizes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # nothing local but the cache
