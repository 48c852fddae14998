"""Explicit weight initialisation shared by every network."""

from __future__ import annotations

from torch import nn


def init_weights(module: nn.Module, gain: float) -> None:
    """DCGAN init: conv / linear weights ~ N(0, gain), norm scales ~ N(1, gain), biases 0.

    GRU weights are left to :func:`init_gru`, which the paper asks to be orthogonal.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


def init_gru(gru: nn.GRU) -> None:
    """Orthogonal input and recurrent matrices (per gate), zero biases."""
    for name, param in gru.named_parameters():
        if name.startswith("weight"):
            for gate in param.data.chunk(3, dim=0):  # reset, update, new gates
                nn.init.orthogonal_(gate)
        else:
            nn.init.zeros_(param)
