"""D: the multi-task discriminator (patch real/fake output and audio-image matching output)."""

from __future__ import annotations

import torch
from torch import nn

from training.audio_encoder import AudioEncoder
from training.config import ModelConfig
from training.init import init_weights

DISCRIMINATORS = ("multitask",)


class MultiTaskDiscriminator(nn.Module):
    """Image trunk 112 -> 56x56x16 -> 28x28x32 -> 14x14x64 -> 7x7x128 (kernel 4, stride 2), then

    - Output1: conv to 7x7x1, patch logits of real vs generated (image-aware);
    - Output2: trunk conv to 4x4x256 joined with z_A tiled to 4x4x256, 1x1 conv to
      4x4x128, valid 4x4 conv to 1x1x1: logit of "this audio matches this face".

    D has its own audio encoder (same architecture as E_A) so that the generator
    cannot shape the audio code D judges. No batch norm in the image trunk: real,
    generated and mismatched pairs go through one forward pass (which keeps DDP
    to one forward per backward) and must not share batch statistics.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        layers = []
        c_prev = 3
        for c in cfg.disc_channels:
            layers += [nn.Conv2d(c_prev, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            c_prev = c
        self.trunk = nn.Sequential(*layers)  # (N, 128, 7, 7)
        self.patch = nn.Conv2d(c_prev, 1, 3, stride=1, padding=1)  # (N, 1, 7, 7)
        self.audio_encoder = AudioEncoder(cfg)
        self.pair = nn.Sequential(  # 7x7 -> 4x4 (padding 2 rounds up)
            nn.Conv2d(c_prev, cfg.disc_pair_channels, 4, stride=2, padding=2),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.joint = nn.Sequential(
            nn.Conv2d(cfg.disc_pair_channels + cfg.z_audio, cfg.disc_joint_channels, 1),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.match = nn.Conv2d(cfg.disc_joint_channels, 1, 4)  # valid: 4x4 -> 1x1
        init_weights(self, cfg.init_gain)

    def forward(self, frames: torch.Tensor, mfcc: torch.Tensor,
                wrong: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch logits of every frame, and match logits of frame-audio pairs.

        The discriminator step judges real and generated frames against the same
        audio, and real frames against mismatched audio: each image and each
        audio window goes through its branch once, and only the cheap joint
        layers run per pair.

        Args:
            frames: (G*N, 3, 112, 112): G groups of N frames (e.g. real, then generated).
            mfcc: (N, 1, 12, 35): the windows that match every group's frames.
            wrong: (N, 1, 12, 35) windows that do not match the first group's frames, or None.
        Returns:
            patch logits (G*N, 1, 7, 7); match logits (G*N + N, 1) with ``wrong``, else (G*N, 1):
            each group against ``mfcc``, then the first group against ``wrong``.
        """
        n = mfcc.shape[0]
        h = self.trunk(frames)  # (G*N, 128, 7, 7)
        patch = self.patch(h)  # (G*N, 1, 7, 7)
        p = self.pair(h)  # (G*N, 256, 4, 4)
        z_a = self.audio_encoder(mfcc if wrong is None else torch.cat([mfcc, wrong]))  # (N or 2N, z_audio)
        z_a = z_a[:, :, None, None].expand(-1, -1, *p.shape[2:])  # (N or 2N, z_audio, 4, 4)
        images = [p] if wrong is None else [p, p[:n]]
        audio = [z_a[:n]] * (frames.shape[0] // n) + ([] if wrong is None else [z_a[n:]])
        j = self.joint(torch.cat([torch.cat(images), torch.cat(audio)], dim=1))  # (pairs, 128, 4, 4)
        return patch, self.match(j).flatten(1)  # (G*N, 1, 7, 7), (pairs, 1)


def define_D(cfg: ModelConfig, name: str = "multitask") -> MultiTaskDiscriminator:
    """The discriminator by name; raises ValueError naming the choices."""
    if name not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {name!r}; choose one of {', '.join(DISCRIMINATORS)}")
    return MultiTaskDiscriminator(cfg)
