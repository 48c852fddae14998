"""Training: overfitting a fixed batch, exact resume, schedule, config, data stream, commands, DDP.

The tests that take the ``device`` fixture run on ``pytest --device`` (cpu by
default; benchmarks/device_check.sh runs them on a GPU).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fixtures.training_shards import synthetic_clip, write_shards
from talkface_cli import cli
from training.config import Stage, load_config, paper_config, tiny_config
from training.data import (
    ClipRef,
    ShardStream,
    clips_from_manifest,
    make_loader,
    next_batch,
    read_manifest,
    to_model_frames,
)
from training.device import resolve_device
from training.losses import GANLoss, mismatch_audio
from training.schedule import learning_rate, stage_index
from training.train import Dist, Losses, build_state, clips_digest, load_checkpoint, train, train_step
from warehouse.features import ShardError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return write_shards(tmp_path_factory.mktemp("shards"), n_clips=3, n_frames=12)


@pytest.fixture(scope="module")
def clips(manifest):
    return clips_from_manifest(read_manifest(manifest), tiny_config().train.seq_len, manifest.parent)


def deterministic(config):
    """``config`` with deterministic kernels: on a GPU too, a resumed run must repeat the whole run bit for bit."""
    return dataclasses.replace(config, train=dataclasses.replace(config.train, deterministic=True))


def test_tiny_config_overfits_a_fixed_batch(clips, device):
    config = tiny_config()
    config = dataclasses.replace(config, train=dataclasses.replace(
        config.train, schedule=(Stage("cae", 40, "CAE", perceptual=False, adversarial=False),)))
    dev = resolve_device(device)
    state = build_state(config, Dist(device=dev))
    batch = ShardStream(clips, 2, 4, seed=0).batch(0)
    losses = Losses(config).to(dev)
    rec = [train_step(state, losses, batch)["rec"].item() for _ in range(40)]
    assert rec[-1] < 0.35 * rec[0], rec
    assert min(rec[-5:]) < min(rec[:5])


def test_adversarial_stage_trains_both_networks(clips, device):
    config = tiny_config()
    dev = resolve_device(device)
    state = build_state(config, Dist(device=dev), stage=1)  # CAE + adversarial
    d_before = [p.detach().clone() for p in state.D.parameters()]
    out = train_step(state, Losses(config).to(dev), ShardStream(clips, 2, 4, seed=0).batch(0))
    assert {"D_image", "D_match", "G_adv", "rec"} <= set(out)
    assert all(v.device == dev and v.dim() == 0 and not v.requires_grad for v in out.values())  # no host sync
    assert out["D_image"].item() == pytest.approx(np.log(2), abs=0.05)  # untrained D: logits near 0
    assert any(not torch.equal(a, b) for a, b in zip(d_before, state.D.parameters()))
    assert all(p.requires_grad is False for p in state.D.parameters())  # switched off after backward_D


@pytest.mark.parametrize("stop", [5, 7])  # inside a stage, and on the switch to the recurrent model
def test_resume_continues_identically(clips, tmp_path, stop, device):
    config = deterministic(tiny_config())
    whole = train(config, clips, tmp_path / "whole", device=device)
    part = train(config, clips, tmp_path / "split", steps=stop, device=device)
    rest = train(config, clips, tmp_path / "split", device=device)
    assert [r["step"] for r in part + rest] == list(range(1, config.total_steps + 1))
    keys = ("rec", "total_G", "D_image", "D_match", "G_adv")
    assert [{k: r.get(k) for k in keys} for r in part + rest] == [{k: r.get(k) for k in keys} for r in whole]
    a, b = load_checkpoint(tmp_path / "whole"), load_checkpoint(tmp_path / "split")
    assert a["step"] == b["step"] == config.total_steps and a["variant"] == "RAE_IA"
    for net in ("G", "D"):
        for key, value in a["model"][net].items():
            assert torch.equal(value, b["model"][net][key]), key


def test_resume_with_a_longer_saved_seq_len_skips_clips_too_short_for_it(clips, tmp_path, caplog):
    """The caller filtered the clips for its own config; the checkpoint's config (seq_len 8) wins."""
    from warehouse.features import write_shard
    from warehouse.location import Location

    short = ClipRef("short", 6, str(tmp_path / write_shard(Location.of(tmp_path), "short", *synthetic_clip(6, 9))))
    seq8 = tiny_config()
    seq8 = dataclasses.replace(seq8, train=dataclasses.replace(seq8.train, seq_len=8))
    train(seq8, clips, tmp_path / "run", steps=1)
    with caplog.at_level("WARNING", logger="training.data"):
        assert train(tiny_config(), [short, *clips], tmp_path / "run", steps=3)[-1]["step"] == 3
    assert "1 of 4 clips are shorter than 8 frames and are skipped" in caplog.text
    with pytest.raises(ValueError, match="no clip has the 8 frames a training sequence needs"):
        train(tiny_config(), [short], tmp_path / "run", steps=4)
    assert load_checkpoint(tmp_path / "run")["step"] == 3
    with pytest.raises(ShardError, match="short.npz: 6 frames .*a training sequence needs 8"):
        ShardStream([dataclasses.replace(short, n_frames=12)], 1, 8, seed=0).batch(0)  # a manifest that lies


def test_a_resume_on_other_clips_says_so(clips, tmp_path, caplog):
    """The batches of a step follow from the clips: a resume on another set is not the same run."""
    train(tiny_config(), clips, tmp_path / "run", steps=1)
    with caplog.at_level("WARNING", logger="training.train"):
        train(tiny_config(), clips, tmp_path / "run", steps=2)
        assert "other clips" not in caplog.text
        train(tiny_config(), clips[:2], tmp_path / "run", steps=3)
    assert "on other clips than it was trained on (2 now): its batches from step 2 on" in caplog.text
    assert load_checkpoint(tmp_path / "run")["clips"] == clips_digest(clips[:2])


@pytest.mark.parametrize("log_every, checkpoint_every, stopped, latest", [
    (5, 2, 4, 2),  # caught before the checkpoint of step 4, between log points
    (1, 4, 3, None),  # caught at the log point of step 3, the first checkpoint (step 4) never written
])
def test_a_nan_loss_stops_the_run_before_it_checkpoints(clips, tmp_path, monkeypatch, log_every, checkpoint_every,
                                                        stopped, latest):
    config = tiny_config()
    config = dataclasses.replace(config, train=dataclasses.replace(
        config.train, log_every=log_every, checkpoint_every=checkpoint_every))
    taken = []

    def nan_in_step_3(batches):
        batch = next_batch(batches)
        taken.append(batch)
        if len(taken) == 3:
            batch["mfcc"][0, 0, 0, 0, 0] = float("nan")
        return batch

    monkeypatch.setattr("training.train.next_batch", nan_in_step_3)
    with pytest.raises(ValueError, match=f"step {stopped}: the generator's loss was NaN or inf.*no checkpoint written"):
        train(config, clips, tmp_path, steps=10)
    written = sorted(p.name for p in tmp_path.glob("ckpt_*.pt"))
    assert written == ([f"ckpt_{latest:08d}.pt"] if latest else [])
    if latest:
        weights = load_checkpoint(tmp_path)["model"]["G"].values()
        assert all(v.isfinite().all() for v in weights if v.is_floating_point())


def test_run_writes_tensorboard_losses_speed_and_samples(clips, tmp_path, device):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_config()
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, log_every=3))
    history = train(config, clips, tmp_path, steps=10, device=device)
    assert [(r["step"], r["steps"]) for r in history] == [(3, 3), (6, 3), (9, 3), (10, 1)]  # and the last step
    assert all(r["frames_per_s"] == pytest.approx(r["steps_per_s"] * 2 * 4) for r in history)  # batch 2 x 4
    assert all(0 <= r["data_s"] < r["wall_s"] for r in history)
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    scalars = events.Tags()["scalars"]
    assert {"loss/rec", "loss/D_match", "speed/steps_per_s", "speed/frames_per_s", "speed/eta_hours",
            "speed/data_share"} <= set(scalars)
    assert [e.step for e in events.Scalars("loss/rec")] == [3, 6, 9, 10]
    assert events.Scalars("speed/eta_hours")[-1].value == 0  # the run's end reached
    image = events.Images("samples/real_top_generated_bottom")[0]
    assert image.width == 4 * 112 and image.height == 2 * 112


def test_schedule_and_learning_rate_are_functions_of_the_step():
    t = tiny_config().train  # stages of 4, 3, 3 steps
    assert [stage_index(t.schedule, s) for s in range(12)] == [0] * 4 + [1] * 3 + [2] * 5
    warm = dataclasses.replace(t, warmup_steps=2)
    assert [learning_rate(warm, s) / t.lr for s in (0, 1, 2, 4, 5, 6)] == [0.5, 1, 1, 0.5, 1, 1]
    paper = paper_config().train
    assert (paper.lr, paper.beta1, paper.seq_len) == (2e-4, 0.5, 70)
    assert [s.variant for s in paper.schedule] == ["CAE", "CAE", "RAE_IA"]
    assert learning_rate(paper, 0) == learning_rate(paper, 100_000) == 2e-4


def test_paper_loss_weights():
    loss = paper_config().loss
    assert (loss.perceptual_weight, loss.adversarial_weight) == (1e-4, 1e-3)


def test_config_file_overrides_a_builtin(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('base = "tiny"\n[train]\nbatch_size = 3\n[[train.schedule]]\n'
                    'name = "rae"\nsteps = 2\nvariant = "RAE_A"\nperceptual = false\nadversarial = true\n')
    config = load_config(path)
    assert config.train.batch_size == 3 and config.model == tiny_config().model
    assert config.train.schedule == (Stage("rae", 2, "RAE_A", False, True),)
    path.write_text("[train]\nbatch = 3\n")
    with pytest.raises(ValueError, match="mine.toml.*batch"):
        load_config(path)
    with pytest.raises(ValueError, match="neither a built-in"):
        load_config(tmp_path / "absent.toml")


@pytest.mark.parametrize("key, value", [("batch_size", 0), ("batch_size", -2), ("log_every", 0),
                                        ("sample_every", 0), ("checkpoint_every", 0)])
def test_config_refuses_counts_below_one(tmp_path, key, value):
    path = tmp_path / "zero.toml"
    path.write_text(f'base = "tiny"\n[train]\n{key} = {value}\n')
    with pytest.raises(ValueError, match=f"^train.{key} {value} must be at least 1$"):
        load_config(path)


def test_stream_is_the_same_for_any_worker_count_and_start(clips):
    stream = ShardStream(clips, 2, 4, seed=3)  # uint8 frames as stored: converted on the training device
    serial = [b for b, _ in zip(make_loader(stream, 0), range(4))]
    parallel = [b for b, _ in zip(make_loader(stream, 2), range(4))]
    later = next(iter(make_loader(ShardStream(clips, 2, 4, seed=3, start_batch=2), 0)))
    for a, b in zip(serial, parallel):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(later["frames"], serial[2]["frames"])
    assert serial[0]["frames"].shape == (2, 4, 112, 112, 3) and serial[0]["mfcc"].shape == (2, 4, 1, 12, 35)
    assert serial[0]["frames"].dtype == serial[0]["reference"].dtype == torch.uint8
    model = to_model_frames(serial[0]["frames"])
    assert model.shape == (2, 4, 3, 112, 112) and -1 <= model.min() and model.max() <= 1
    assert not torch.equal(serial[0]["frames"], serial[1]["frames"])


LOADER_IN_A_FLOW_RUN = """
import gc, sys
from pathlib import Path
from prefect import flow
from training.data import ClipRef, ShardStream, clips_from_manifest, make_loader, read_manifest

@flow
def load(manifest: str) -> int:
    clips = clips_from_manifest(read_manifest(manifest), 4, Path(manifest).parent)
    batches = iter(make_loader(ShardStream(clips, 2, 4, seed=0), 2))
    taken = sum(1 for _, _ in zip(batches, range(3)))
    del batches  # the workers are shut down here, inside the flow run
    gc.collect()
    return taken

print("batches", load(sys.argv[1]))
"""


@pytest.mark.integration
def test_loader_workers_forked_in_a_prefect_flow_run_end_cleanly(manifest, tmp_path):
    """The training flow trains in its flow run's process: forked loader workers inherit the exit hooks of
    Prefect's services and, running them, used to end with exit code 1 ("exited unexpectedly")."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    done = subprocess.run([sys.executable, "-c", LOADER_IN_A_FLOW_RUN, str(manifest)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "batches 3" in done.stdout
    assert "exited unexpectedly" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr[-3000:]


def test_mismatched_audio_never_keeps_a_sequence_own_audio():
    mfcc = torch.arange(4 * 5, dtype=torch.float32).view(4, 5, 1, 1, 1).expand(4, 5, 1, 12, 35)
    wrong = mismatch_audio(mfcc, torch.Generator().manual_seed(0))
    for i in range(4):
        assert not torch.equal(wrong[i], mfcc[i])
    for i in range(2):  # first half: its own audio shifted in time
        assert any(torch.equal(wrong[i], mfcc[i].roll(s, dims=0)) for s in range(1, 5))
    for i in range(2, 4):  # second half: another sequence's audio
        assert any(torch.equal(wrong[i], mfcc[j]) for j in range(4) if j != i)
    again = mismatch_audio(mfcc, torch.Generator().manual_seed(0))
    assert torch.equal(wrong, again)


def test_gan_loss_hides_its_targets():
    gan = GANLoss("vanilla")
    zero = torch.zeros(3, 1, 7, 7)
    assert gan(zero, True).item() == pytest.approx(np.log(2))
    assert gan(torch.full((2, 1), 10.0), True).item() < 1e-4
    assert GANLoss("lsgan")(zero, True).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="vanilla, lsgan"):
        GANLoss("wgan")


def test_manifest_problems_name_the_file(tmp_path, manifest):
    import pyarrow as pa
    import pyarrow.parquet as pq

    empty = tmp_path / "empty.parquet"
    pq.write_table(read_manifest(manifest).slice(0, 0), empty)
    with pytest.raises(ShardError, match="empty.parquet.*no clips"):
        clips_from_manifest(read_manifest(empty), 4, source=str(empty))
    with pytest.raises(ShardError, match="nothing.parquet not found"):
        read_manifest(tmp_path / "nothing.parquet")
    bad = tmp_path / "bad.npz"
    np.savez_compressed(bad, frames=np.zeros((6, 112, 112, 3), np.uint8))
    table = pa.table({"clip_id": ["x"], "n_frames": [6], "shard_uri": [str(bad)]})
    stream = ShardStream(clips_from_manifest(table, 4), 1, 4, seed=0)
    with pytest.raises(ShardError, match="bad.npz.*'mfcc'"):
        stream.batch(0)
    table = pa.table({"clip_id": ["y"], "n_frames": [6], "shard_uri": [str(tmp_path / "gone.npz")]})
    with pytest.raises(ShardError, match="gone.npz"):
        ShardStream(clips_from_manifest(table, 4), 1, 4, seed=0).batch(0)
    with pytest.raises(ShardError, match="no clip has the 70 frames"):
        clips_from_manifest(table, 70)


@pytest.mark.parametrize("column, values, message", [
    ("n_frames", [80, None], r"1 rows have no n_frames \(first: clip y\)"),  # was TypeError from int(None)
    ("clip_id", ["x", None], r"1 rows have no clip_id \(first: row 1\)"),  # was TypeError from the sort
])  # fmt: skip
def test_manifest_null_values_name_the_file_and_the_column(column, values, message):
    import pyarrow as pa

    columns = {"clip_id": ["x", "y"], "n_frames": [80, 80], "shard_uri": ["a.npz", "b.npz"]}
    table = pa.table({**columns, column: values})
    with pytest.raises(ShardError, match=f"m.parquet: {message}"):
        clips_from_manifest(table, 4, source="m.parquet")


def test_train_command_on_a_manifest(manifest, tmp_path, device):
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "--manifest", str(manifest), "--config", "tiny", "--steps", "3",
                                 "--out", str(tmp_path / "run"), "--device", device])
    assert result.exit_code == 0, result.output
    assert "trained to step 3" in result.output
    assert load_checkpoint(tmp_path / "run")["step"] == 3
    result = runner.invoke(cli, ["train", "--manifest", str(tmp_path / "none.parquet"), "--config", "tiny",
                                 "--out", str(tmp_path / "run2")])
    assert result.exit_code == 1 and "none.parquet not found" in result.output


def test_train_command_with_nothing_left_to_do_names_the_runs_step(manifest, tmp_path):
    """It printed the --steps asked for ('already at step 1' of a run at step 2), or 'step None' without it."""
    config = tmp_path / "two.toml"
    config.write_text('base = "tiny"\n[[train.schedule]]\n'
                      'name = "cae"\nsteps = 2\nvariant = "CAE"\nperceptual = false\nadversarial = false\n')
    run_dir = tmp_path / "run"
    args = ["train", "--manifest", str(manifest), "--config", str(config), "--out", str(run_dir)]
    runner = CliRunner()
    assert runner.invoke(cli, args).exit_code == 0
    for extra in ([], ["--steps", "1"], ["--steps", "2"]):
        result = runner.invoke(cli, [*args, *extra])
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[-1] == f"nothing to do: {run_dir} is already at step 2"


@pytest.mark.integration
def test_torchrun_ddp_on_two_cpu_processes(manifest, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "talkface_cli", "train", "--manifest", str(manifest), "--config", "tiny", "--steps", "2",
           "--out", str(tmp_path / "ddp")]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "world size 2" in done.stderr
    ckpt = load_checkpoint(tmp_path / "ddp")
    assert ckpt["step"] == 2 and not any(k.startswith("module.") for k in ckpt["model"]["G"])


def test_train_command_on_the_warehouse(manifest, tmp_path):
    """`--warehouse`: the manifest comes from the feature_shards table (no selection: every clip)."""
    from warehouse.store import Warehouse

    store = Warehouse(tmp_path / "wh")
    store.upsert("feature_shards", read_manifest(manifest))
    result = CliRunner().invoke(cli, ["train", "--warehouse", str(tmp_path / "wh"), "--config", "tiny",
                                      "--steps", "2", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(tmp_path / "run")["step"] == 2
    result = CliRunner().invoke(cli, ["train", "--warehouse", str(tmp_path / "empty_wh"), "--config", "tiny",
                                      "--out", str(tmp_path / "run2")])
    assert result.exit_code == 1 and "no clips" in result.output
