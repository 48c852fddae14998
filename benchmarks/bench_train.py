"""Training throughput at the paper's sizes: frames/s, model FLOPs and TFLOP/s, data-loading share, memory.

Runs the real training loop (``training.train.train``) on synthetic shards in the
faces stage's format for two stages: the CAE (L1 only) and the recurrent
RAE_IA with the adversarial losses (generator and discriminator steps). The
first ``--warmup`` steps of each stage (loader start-up, cuDNN autotuning,
compilation) are not counted. FLOPs per frame are counted on the meta device
(``training.flops``); TFLOP/s = FLOPs per frame x frames/s. First, what a
loader worker holds to cut one window from a long clip's shard: the peak memory
(tracemalloc) of reading the shard whole, and of opening it and reading the
window alone (``--long-shard-frames``, default a 5-minute span).

    python benchmarks/bench_train.py [--batch-size 2 ...] [--precision auto|fp32|fp16|bf16 ...]
                                     [--compile auto|on|off ...] [--seq-len 70] [--steps 6] [--warmup 3]
                                     [--workers 2] [--device auto] [--long-shard-frames 7500]

Every combination of the listed batch sizes, precisions and compile settings
is one cell, measured in this process in that order (compile outermost);
each prints a Markdown table row per stage as soon as it is measured
(``benchmarks/device_check.sh`` collects them).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from fixtures.training_shards import shard_memory_peaks, write_shards  # noqa: E402
from training.config import PRECISIONS, Config, Stage, paper_config  # noqa: E402
from training.data import ClipRef, clips_from_manifest, read_manifest  # noqa: E402
from training.device import resolve_device, runtime_settings  # noqa: E402
from training.flops import flops_per_frame  # noqa: E402
from training.train import train  # noqa: E402
from warehouse.location import Location  # noqa: E402

HEADER = ("| device | batch | precision | compile | stage | frames/s | GFLOP/frame | TFLOP/s | s/step "
          "| data wait | peak MiB |\n|---|---|---|---|---|---|---|---|---|---|---|")
SWITCH = {"auto": "auto", "on": True, "off": False}


def peak_memory_mib(device: torch.device) -> float:
    """Peak CUDA memory allocated, or the process's peak resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_stage(config: Config, clips: list[ClipRef], run_dir: Path, device: torch.device,
                  warmup: int, steps: int) -> dict[str, float]:
    """frames/s, s/step and the data-wait share of ``config``'s one-stage schedule after ``warmup`` steps.

    The loop logs (and so waits for the GPU) every ``warmup`` steps: its first
    record is the warm-up, the others are measured.
    """
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    history = train(config, clips, run_dir, steps=warmup + steps, device=str(device))[1:]
    n = sum(r["steps"] for r in history)
    wall = sum(r["wall_s"] for r in history)
    return {"frames_per_s": n * config.train.batch_size * config.train.seq_len / wall, "step_s": wall / n,
            "data_share": sum(r["data_s"] for r in history) / wall, "peak_mib": peak_memory_mib(device)}


def _figure(x: float) -> str:
    """Thousands separated when large, three significant digits when small (CPU figures)."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


@functools.cache
def gflop_per_frame(config: Config) -> float:
    """Model GFLOPs per frame of ``config``'s first stage (the same for every precision and compile setting)."""
    return flops_per_frame(config, 0) / 1e9


def stage_rows(config: Config, clips: list[ClipRef], folder: Path, device: torch.device, warmup: int,
               steps: int) -> list[str]:
    """One table row per stage (CAE with L1, RAE_IA with the adversarial losses) of one cell."""
    runtime = runtime_settings(config.train, device)
    rows = []
    for stage in (Stage("cae", warmup + steps, "CAE", False, False),
                  Stage("rae_gan", warmup + steps, "RAE_IA", False, True)):
        one = dataclasses.replace(config, train=dataclasses.replace(config.train, schedule=(stage,)))
        torch._dynamo.reset()  # compiled code of earlier cells out of the way (and of its recompile limit)
        m = measure_stage(one, clips, folder / f"run_{len(list(folder.iterdir()))}", device, warmup, steps)
        gflop = gflop_per_frame(dataclasses.replace(one, train=dataclasses.replace(
            one.train, precision="auto", compile="auto")))
        label = f"{stage.variant}{' + adversarial' if stage.adversarial else ' (L1)'}"
        cells = [device.type, config.train.batch_size, runtime.precision.name, "on" if runtime.compile else "off",
                 label, _figure(m["frames_per_s"]), f"{gflop:.2f}", _figure(gflop * m["frames_per_s"] / 1e3),
                 f"{m['step_s']:.3f}", f"{100 * m['data_share']:.1f} %", f"{m['peak_mib']:,.0f}"]
        rows.append("| " + " | ".join(map(str, cells)) + " |")
    return rows


def window_read_line(folder: Path, n_frames: int, seq_len: int) -> str:
    """Peak MiB to get one ``seq_len`` window of an ``n_frames`` shard, read whole and by window, side by side."""
    peaks = {k: v / 2**20 for k, v in shard_memory_peaks(Location.of(folder), n_frames, seq_len, whole=True).items()}
    (folder / "shards" / "long.npz").unlink()
    return (f"# one {seq_len}-frame window of a {n_frames}-frame shard ({peaks['frames']:,.0f} MiB of frames), "
            f"peak MiB: {peaks['whole']:,.1f} read whole (read_shard), {peaks['window']:,.1f} by window "
            f"(open_shard + frames and mfcc); {peaks['write']:,.1f} to write it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[2])
    parser.add_argument("--seq-len", type=int, default=70)
    parser.add_argument("--steps", type=int, default=6, help="measured steps per stage, after the warm-up")
    parser.add_argument("--warmup", type=int, default=3, help="steps per stage not counted")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", nargs="+", default=["auto"], choices=PRECISIONS)
    parser.add_argument("--compile", nargs="+", default=["auto"], choices=tuple(SWITCH))
    parser.add_argument("--long-shard-frames", type=int, default=7500,
                        help="frames of the shard whose window reads are measured (7500: 5 minutes); 0 skips it")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    base = paper_config()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.long_shard_frames:
            print(window_read_line(folder, args.long_shard_frames, args.seq_len), flush=True)
        print(f"# {name}, torch {torch.__version__}; sequences of {args.seq_len} frames at 112 px, {args.workers} "
              f"loader workers, {args.warmup} warm-up + {args.steps} measured steps per stage\n{HEADER}", flush=True)
        manifest = write_shards(folder, n_clips=4, n_frames=args.seq_len + 10)
        clips = clips_from_manifest(read_manifest(manifest), args.seq_len, folder)
        runs = folder / "runs"
        runs.mkdir()
        for compile_, batch_size, precision in itertools.product(args.compile, args.batch_size, args.precision):
            config = dataclasses.replace(base, train=dataclasses.replace(
                base.train, batch_size=batch_size, seq_len=args.seq_len, num_workers=args.workers,
                precision=precision, compile=SWITCH[compile_], log_every=args.warmup, sample_every=10**9,
                checkpoint_every=10**9))
            t0 = time.perf_counter()
            for row in stage_rows(config, clips, runs, device, args.warmup, args.steps):
                print(row, flush=True)
            print(f"# {runtime_settings(config.train, device).describe()}, batch {batch_size}: "
                  f"{time.perf_counter() - t0:.0f} s with setup and checkpoints", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
