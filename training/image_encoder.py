"""E_I: the identity encoder, from the reference face to z_I plus the U-Net skips."""

from __future__ import annotations

import torch
from torch import nn

from training.config import ModelConfig
from training.init import init_weights


class ImageEncoder(nn.Module):
    """Four kernel-5 stride-2 convs (112 -> 56 -> 28 -> 14 -> 7), then FC 512 and FC 256.

    The first conv has no batch norm (pix2pix encoder convention); the others
    are Conv+BN+LeakyReLU.
    """

    def __init__(self, cfg: ModelConfig, in_channels: int = 3) -> None:
        super().__init__()
        layers = []
        c_prev = in_channels
        for i, c in enumerate(cfg.image_channels):
            layers.append(nn.Sequential(
                nn.Conv2d(c_prev, c, 5, stride=2, padding=2, bias=i == 0),
                nn.Identity() if i == 0 else nn.BatchNorm2d(c),
                nn.LeakyReLU(0.2, inplace=True),
            ))
            c_prev = c
        self.convs = nn.ModuleList(layers)
        side = cfg.image_size // 2 ** len(cfg.image_channels)
        self.fc = nn.Sequential(
            # No batch norm here: its batch is one reference per sequence, possibly a single one.
            nn.Linear(c_prev * side * side, cfg.image_fc),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.image_fc, cfg.z_image),
        )
        init_weights(self, cfg.init_gain)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(N, 3, 112, 112) in [-1, 1] -> z_I (N, z_image) and skips [56x56x64, 28x28x128, 14x14x256]."""
        skips = []
        x = image
        for conv in self.convs:
            x = conv(x)
            skips.append(x)
        z = self.fc(x.flatten(1))  # (N, z_image), from the 7x7x512 map
        return z, skips[:-1]
