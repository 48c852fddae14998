"""E_A: the audio encoder, from one 12x35 MFCC window to the audio code z_A."""

from __future__ import annotations

import math

import torch
from torch import nn

from training.config import ModelConfig
from training.init import init_weights


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    """Kernel 3, stride 1, SAME padding, batch norm, ReLU (one row of the E_A table)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=1, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class AudioEncoder(nn.Module):
    """conv64 conv128 pool(1,2) conv256 conv256 conv512 pool(2,2) FC512 FC256.

    The pools use ceil mode so that 35 time steps become 18, as in the table.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = cfg.audio_channels
        self.convs = nn.Sequential(
            conv_bn_relu(1, c1),
            conv_bn_relu(c1, c2),
            nn.MaxPool2d((1, 2), ceil_mode=True),  # 12x35 -> 12x18
            conv_bn_relu(c2, c3),
            conv_bn_relu(c3, c4),
            conv_bn_relu(c4, c5),
            nn.MaxPool2d((2, 2), ceil_mode=True),  # 12x18 -> 6x9
        )
        h, w = math.ceil(cfg.mfcc_bins / 2), math.ceil(math.ceil(cfg.mfcc_steps / 2) / 2)  # 6, 9
        self.fc = nn.Sequential(
            nn.Linear(c5 * h * w, cfg.audio_fc, bias=False),
            nn.BatchNorm1d(cfg.audio_fc),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.audio_fc, cfg.z_audio),
        )
        init_weights(self, cfg.init_gain)

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        """(N, 1, 12, 35) MFCC windows -> (N, z_audio) codes."""
        x = self.convs(mfcc)  # (N, 512, 6, 9)
        return self.fc(x.flatten(1))  # (N, z_audio)
