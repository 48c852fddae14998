"""G: the frame decoder, from a per-frame code to a 112x112 RGB face, with U-Net skips."""

from __future__ import annotations

import torch
from torch import nn

from training.config import ModelConfig
from training.init import init_weights


def deconv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    """Kernel 5, stride 2: doubles the side exactly (output_padding 1)."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class Decoder(nn.Module):
    """FC 7x7x512, deconvs to 14x14x256, 28x28x128, 56x56x64 (each joined to the matching
    image-encoder map), 112x112x32, then an RGB deconv with tanh."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c1, c2, c3, c4 = cfg.image_channels  # 64, 128, 256, 512
        self.side = cfg.image_size // 2 ** len(cfg.image_channels)  # 7
        self.c_top = c4
        self.fc = nn.Sequential(
            nn.Linear(cfg.z_audio + cfg.z_image, c4 * self.side * self.side, bias=False),
            nn.BatchNorm1d(c4 * self.side * self.side),
            nn.ReLU(inplace=True),
        )
        self.up = nn.ModuleList([
            deconv_bn_relu(c4, c3),  # 7 -> 14, joined with E_I's 14x14xc3
            deconv_bn_relu(2 * c3, c2),  # 14 -> 28, joined with 28x28xc2
            deconv_bn_relu(2 * c2, c1),  # 28 -> 56, joined with 56x56xc1
            deconv_bn_relu(2 * c1, cfg.decoder_out_channels),  # 56 -> 112
        ])
        self.to_rgb = nn.Sequential(
            nn.ConvTranspose2d(cfg.decoder_out_channels, 3, 5, stride=1, padding=2),
            nn.Tanh(),
        )
        init_weights(self, cfg.init_gain)

    def forward(self, code: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """code (N, z_audio + z_image), skips [56, 28, 14 side maps] -> frames (N, 3, 112, 112) in [-1, 1]."""
        x = self.fc(code).view(-1, self.c_top, self.side, self.side)  # (N, 512, 7, 7)
        for up, skip in zip(self.up[:-1], reversed(skips)):
            x = torch.cat([up(x), skip], dim=1)  # (N, 2c, 2s, 2s)
        x = self.up[-1](x)  # (N, 32, 112, 112)
        return self.to_rgb(x)  # (N, 3, 112, 112)
