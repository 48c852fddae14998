"""Training throughput at the paper's sizes: frames per second, peak memory, data-loading share.

Runs the real training loop (``training.train.train``) on synthetic shards in the
faces stage's format for a few steps of two stages: the CAE (L1 only) and the
recurrent RAE_IA with the adversarial losses (generator and discriminator
steps). The first step of each stage is a warm-up and is not counted.

    python benchmarks/bench_train.py [--batch-size 2] [--seq-len 70] [--steps 4] [--device cuda]

On CUDA the config's mixed precision is on; ``--no-amp`` measures float32.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from fixtures.training_shards import write_shards  # noqa: E402
from training.config import Stage, paper_config  # noqa: E402
from training.data import clips_from_manifest, read_manifest  # noqa: E402
from training.train import train  # noqa: E402


def peak_memory_mib(device: str) -> float:
    """Peak CUDA memory allocated, or the process's peak resident set on CPU."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=70)
    parser.add_argument("--steps", type=int, default=4, help="steps per stage, the first one not counted")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-amp", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    base = paper_config()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        manifest = write_shards(folder, n_clips=4, n_frames=args.seq_len + 10)
        clips = clips_from_manifest(read_manifest(manifest), args.seq_len, folder)
        print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
              f"batch {args.batch_size} x {args.seq_len} frames at {base.model.image_size} px, "
              f"workers {args.workers}, amp {not args.no_amp and args.device.startswith('cuda')}")
        for stage in (Stage("cae", args.steps, "CAE", False, False),
                      Stage("rae_gan", args.steps, "RAE_IA", False, True)):
            config = dataclasses.replace(base, train=dataclasses.replace(
                base.train, batch_size=args.batch_size, seq_len=args.seq_len, num_workers=args.workers,
                amp=not args.no_amp, schedule=(stage,), log_every=10**9, sample_every=10**9,
                checkpoint_every=10**9))
            if args.device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            history = train(config, clips, folder / f"run_{stage.name}", device=args.device)[1:]
            wall = time.perf_counter() - t0
            step_s = sum(r["step_s"] for r in history)
            data_s = sum(r["data_s"] for r in history)
            frames = len(history) * args.batch_size * args.seq_len
            print(f"{stage.variant:7s} adversarial={stage.adversarial!s:5s} "
                  f"{frames / step_s:8.1f} frames/s  {step_s / len(history):7.2f} s/step  "
                  f"data loading {100 * data_s / step_s:5.1f}% of step time  "
                  f"peak memory {peak_memory_mib(args.device):8.0f} MiB  (run incl. setup and final "
                  f"checkpoint {wall:.0f} s)")


if __name__ == "__main__":
    main()
