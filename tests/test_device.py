"""Devices, precision and speed switches: resolved and checked on a CPU, the GPU code paths run on a CPU too.

Nothing here mocks CUDA. The float16 path (autocast with gradient scalers),
the bfloat16 path, channels_last, fused Adam and torch.compile all run on a
CPU; the checks of what they turn into on a GPU are marked ``needs_cuda`` and
run where one is (``benchmarks/device_check.sh``). Tests taking the ``device``
fixture run on ``pytest --device``.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import training.train
from fixtures.training_shards import write_shards
from talkface_cli import cli, run_cli
from training.config import Stage, load_config, paper_config, tiny_config
from training.data import ShardStream, clips_from_manifest, read_manifest
from training.device import Precision, precision_policy, resolve_device, runtime_settings, switch
from training.train import (
    Dist,
    Losses,
    build_state,
    checkpoint_dict,
    load_checkpoint,
    restore_state,
    train,
    train_step,
)

REPO = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (benchmarks/device_check.sh runs it)")
without_cuda = pytest.mark.skipif(CUDA, reason="checks the error of a machine without CUDA")
BF16, FP16 = torch.bfloat16, torch.float16


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    return clips_from_manifest(read_manifest(write_shards(folder, n_clips=3, n_frames=12)), 4, folder)


def _with(config, **train):
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **train))


def test_cpu_and_auto_resolve_here():
    assert resolve_device("cpu") == resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device("auto") == resolve_device(None) == (torch.device("cuda", 0) if CUDA else torch.device("cpu"))


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cpu:0", "cuda:", "auto:1", "cuda:-1"])
def test_malformed_device_names_the_choices(spec):
    with pytest.raises(ValueError, match=f"device '{spec}': expected auto, cpu, cuda or cuda:N"):
        resolve_device(spec)


@without_cuda
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:7"])
def test_cuda_without_cuda_is_one_line(spec):
    with pytest.raises(ValueError, match=f"device '{spec}': CUDA is not available") as raised:
        resolve_device(spec)
    assert "\n" not in str(raised.value)


@without_cuda
@pytest.mark.parametrize("command", ["train", "generate"])
@pytest.mark.parametrize("spec", ["cuda", "cuda:7"])
def test_commands_refuse_cuda_without_it_in_one_line_exit_2(tmp_path, capsys, command, spec):
    args = {"train": ["--manifest", tmp_path / "m.parquet", "--config", "tiny", "--out", tmp_path / "run"],
            "generate": ["--image", tmp_path / "face.png", "--audio", tmp_path / "speech.wav",
                         "--checkpoint", tmp_path / "run", "--out", tmp_path / "out.mp4"]}[command]
    assert run_cli(cli, "talkface", [command, *map(str, args), "--device", spec]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"talkface: error: device '{spec}': CUDA is not available")
    assert list(tmp_path.iterdir()) == []  # checked before anything is read or written


@without_cuda
def test_train_process_with_cuda_exits_2_naming_it(tmp_path):
    done = subprocess.run([sys.executable, "-m", "talkface_cli", "train", "--manifest", str(tmp_path / "m.parquet"),
                           "--config", "tiny", "--out", str(tmp_path / "run"), "--device", "cuda"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "talkface: error: device 'cuda': CUDA is not available" in done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("device_type, bf16, precision, expected", [
    ("cuda", True, "auto", Precision(BF16, False)),  # Ampere and later: no scaler needed
    ("cuda", False, "auto", Precision(FP16, True)),  # older GPUs: float16 with a scaler
    ("cpu", True, "auto", Precision(None, False)),  # CPU autocast is slower than float32
    ("cuda", True, "fp32", Precision(None, False)),
    ("cuda", True, "fp16", Precision(FP16, True)),
    ("cuda", True, "bf16", Precision(BF16, False)),
    ("cpu", True, "fp16", Precision(FP16, True)),  # honoured: the CPU tests run the scaler path
    ("cpu", True, "bf16", Precision(BF16, False)),
])
def test_precision_policy(device_type, bf16, precision, expected):
    assert precision_policy(device_type, bf16, precision) == expected


def test_precision_policy_refuses_what_cannot_run():
    with pytest.raises(ValueError, match="bf16: this cuda device does not support bfloat16"):
        precision_policy("cuda", False, "bf16")
    with pytest.raises(ValueError, match="'fp8': choose one of auto, fp32, fp16, bf16"):
        precision_policy("cuda", True, "fp8")


def test_switches_and_cpu_settings():
    assert [switch(v, "cuda") for v in ("auto", True, False)] == [True, True, False]
    assert [switch(v, "cpu") for v in ("auto", True, False)] == [False, True, False]
    runtime = runtime_settings(paper_config().train, torch.device("cpu"))
    assert runtime.describe() == "cpu: fp32"
    fast = runtime_settings(_with(paper_config(), precision="fp16", channels_last=True, fused_adam=True).train,
                            torch.device("cpu"))
    assert fast.describe() == "cpu: fp16 with gradient scaler, channels_last, fused Adam"


def test_config_file_checks_the_speed_fields(tmp_path):
    path = tmp_path / "fast.toml"
    path.write_text('base = "tiny"\n[train]\nprecision = "bf16"\ncompile = true\nchannels_last = "auto"\n')
    assert (load_config(path).train.precision, load_config(path).train.compile) == ("bf16", True)
    path.write_text('[train]\nprecision = "fp8"\n')
    with pytest.raises(ValueError, match="train.precision 'fp8' not one of auto, fp32, fp16, bf16"):
        load_config(path)
    path.write_text('[train]\ncompile = "yes"\n')
    with pytest.raises(ValueError, match="train.compile 'yes' must be true, false or \"auto\""):
        load_config(path)
    path.write_text("[train]\namp = false\n")  # replaced by precision
    with pytest.raises(ValueError, match="unknown TrainConfig fields.*amp"):
        load_config(path)


@pytest.mark.parametrize("precision, channels_last", [("bf16", True), ("fp16", False)])
def test_gpu_code_paths_train_and_resume_identically(clips, tmp_path, device, precision, channels_last):
    """Mixed precision (fp16: with its scalers), channels_last and fused Adam, resumed where RAE_IA starts.

    A step of CAE + adversarial, then one of RAE_IA, on one sequence of two frames: float16
    convolutions on a CPU are slow.
    """
    schedule = (Stage("cae_gan", 1, "CAE", False, True), Stage("rae", 1, "RAE_IA", False, True))
    config = _with(tiny_config(), precision=precision, channels_last=channels_last, fused_adam=True,
                   deterministic=True, schedule=schedule, batch_size=1, seq_len=2)
    whole = train(config, clips, tmp_path / "whole", device=device)
    part = train(config, clips, tmp_path / "split", steps=1, device=device)
    rest = train(config, clips, tmp_path / "split", device=device)
    keys = ("rec", "total_G", "D_image", "D_match", "G_adv")
    assert [{k: r.get(k) for k in keys} for r in part + rest] == [{k: r.get(k) for k in keys} for r in whole]
    a, b = load_checkpoint(tmp_path / "whole"), load_checkpoint(tmp_path / "split")
    assert bool(a["scaler"]["G"]) == bool(a["scaler"]["D"]) == (precision == "fp16")  # bf16 needs no scaler
    for net in ("G", "D"):
        for key, value in a["model"][net].items():
            assert torch.equal(value, b["model"][net][key]), key
    state = restore_state(b, Dist(device=resolve_device(device)))
    assert state.G.decoder.up[0][0].weight.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert state.opt_G.defaults["fused"] and state.scaler_G.is_enabled() == (precision == "fp16")


def test_compiled_networks_train_like_eager_and_keep_their_state_dict_keys(clips, monkeypatch, device):
    """torch.compile in place: same losses as eager, checkpoints unchanged. The CPU test uses the
    aot_eager backend (traced graphs, no C++ build: inductor takes minutes on two cores)."""
    monkeypatch.setattr(training.train, "COMPILE_BACKEND", "aot_eager")
    config = tiny_config()
    dev = resolve_device(device)
    batch = ShardStream(clips, 2, 4, seed=0).batch(0)
    records = []
    for compile_ in (False, True):
        state = build_state(_with(config, compile=compile_), Dist(device=dev), stage=2)  # RAE_IA + adversarial
        losses = Losses(config).to(dev)
        records.append([{k: v.item() for k, v in train_step(state, losses, batch).items()} for _ in range(2)])
        assert (state.G._compiled_call_impl is not None) == compile_
        assert list(checkpoint_dict(state)["model"]["G"]) == list(state.G.state_dict())  # no _orig_mod. prefix
    for eager, compiled in zip(*records):
        assert compiled == pytest.approx(eager, rel=1e-4, abs=1e-6)


def test_checkpoint_from_before_precision_still_loads(clips, tmp_path):
    config = tiny_config()
    state = build_state(config, Dist())
    ckpt = checkpoint_dict(state)
    del ckpt["config"]["train"]["precision"]
    ckpt["config"]["train"]["amp"] = False
    torch.save(ckpt, tmp_path / "ckpt_00000000.pt")
    loaded = load_checkpoint(tmp_path)
    assert loaded["config"]["train"]["precision"] == "fp32"
    assert restore_state(loaded, Dist()).config == _with(config, precision="fp32")


@needs_cuda
def test_cuda_names_an_indexed_gpu_in_range():
    assert resolve_device("cuda") == resolve_device("cuda", local_rank=0) == torch.device("cuda", 0)
    count = torch.cuda.device_count()
    assert resolve_device(f"cuda:{count - 1}") == torch.device("cuda", count - 1)
    with pytest.raises(ValueError, match=f"GPU index {count} out of range"):
        resolve_device(f"cuda:{count}")


@needs_cuda
def test_auto_is_the_fast_path_on_a_gpu():
    state = build_state(paper_config(), Dist(device=resolve_device("cuda")))
    bf16 = torch.cuda.is_bf16_supported()
    assert state.runtime.precision == (Precision(BF16, False) if bf16 else Precision(FP16, True))
    assert state.runtime.channels_last and state.runtime.compile and state.runtime.fused_adam
    assert state.G.decoder.up[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert state.opt_G.defaults["fused"] and state.opt_D.defaults["fused"]
