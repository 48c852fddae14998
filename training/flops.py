"""Model FLOPs of one training step, counted by torch's FLOP counter on the meta device.

``torch.utils.flop_counter`` counts the matrix multiplications and
convolutions of the forward and backward passes: the arithmetic a GPU's
tensor cores do. FLOPs per frame times frames per second is the throughput
achieved, to hold against the GPU's peak. On the meta device tensors have
shapes but no data, so the paper's sizes count in about a second anywhere.
"""

from __future__ import annotations

import dataclasses

import torch
from torch.utils.flop_counter import FlopCounterMode

from training.config import Config
from training.train import Dist, Losses, build_state, train_step


def step_flops(config: Config, stage: int) -> int:
    """FLOPs of one :func:`training.train.train_step` in schedule stage ``stage``, at the
    config's batch size and sequence length (the perceptual loss counts only when configured)."""
    meta = torch.device("meta")
    # FLOPs do not depend on the precision, layout, compilation or Adam kernels, which the meta device lacks.
    config = dataclasses.replace(config, train=dataclasses.replace(
        config.train, precision="fp32", channels_last=False, compile=False, fused_adam=False))
    t, size = config.train, config.model.image_size
    batch = {
        "reference": torch.zeros(t.batch_size, size, size, 3, dtype=torch.uint8, device=meta),
        "frames": torch.zeros(t.batch_size, t.seq_len, size, size, 3, dtype=torch.uint8, device=meta),
        "mfcc": torch.zeros(t.batch_size, t.seq_len, 1, config.model.mfcc_bins, config.model.mfcc_steps,
                            device=meta),
    }
    state = build_state(config, Dist(device=meta), stage)
    with FlopCounterMode(display=False) as counter:
        train_step(state, Losses(config).to(meta), batch)
    return counter.get_total_flops()


def flops_per_frame(config: Config, stage: int) -> float:
    """FLOPs of one training step per generated video frame."""
    return step_flops(config, stage) / (config.train.batch_size * config.train.seq_len)
