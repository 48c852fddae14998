"""The generator: E_A + E_I + (GRU) + G, with the paper's three variants behind one factory.

- ``CAE``: no recurrence; frame t is decoded from [z_A(t), z_I].
- ``RAE_A``: a GRU runs over z_A(t); its output joins z_I.
- ``RAE_IA`` (default): a GRU runs over the hybrid code [z_A(t), z_I].

Every variant feeds the decoder a (z_audio + z_image) code, so encoder and
decoder weights move between variants unchanged: that is how the recurrent
model is fine-tuned from the CAE (see :meth:`Generator.load_shared`).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from training.audio_encoder import AudioEncoder
from training.config import VARIANTS, ModelConfig
from training.decoder import Decoder
from training.image_encoder import ImageEncoder
from training.init import init_gru

log = logging.getLogger(__name__)


class Generator(nn.Module):
    """Reference face + MFCC sequence -> frame sequence."""

    def __init__(self, cfg: ModelConfig, variant: str) -> None:
        super().__init__()
        self.variant = variant
        self.audio_encoder = AudioEncoder(cfg)
        self.image_encoder = ImageEncoder(cfg)
        self.decoder = Decoder(cfg)
        hybrid = cfg.z_audio + cfg.z_image
        if variant == "RAE_IA":
            self.gru: nn.GRU | None = nn.GRU(hybrid, hybrid, batch_first=True)
        elif variant == "RAE_A":
            self.gru = nn.GRU(cfg.z_audio, cfg.z_audio, batch_first=True)
        else:
            self.gru = None
        if self.gru is not None:
            init_gru(self.gru)

    def forward(self, reference: torch.Tensor, mfcc: torch.Tensor,
                hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decode one frame per MFCC window.

        Args:
            reference: (B, 3, H, W) identity frame in [-1, 1].
            mfcc: (B, T, 1, 12, 35) audio windows, one per output frame.
            hidden: GRU state carried over from a previous chunk (generation of long audio).

        Returns:
            frames (B, T, 3, H, W) in [-1, 1], and the GRU state (None for CAE).
        """
        b, t = mfcc.shape[:2]
        z_a = self.audio_encoder(mfcc.flatten(0, 1)).view(b, t, -1)  # (B, T, z_audio)
        z_i, skips = self.image_encoder(reference)  # (B, z_image), [(B, c, s, s)]
        z_i = z_i.unsqueeze(1).expand(b, t, z_i.shape[-1])  # (B, T, z_image)
        if self.variant == "RAE_IA":
            code, hidden = self.gru(torch.cat([z_a, z_i], dim=-1), hidden)  # (B, T, z_a + z_i)
        elif self.variant == "RAE_A":
            z_a, hidden = self.gru(z_a, hidden)  # (B, T, z_audio)
            code = torch.cat([z_a, z_i], dim=-1)
        else:
            code = torch.cat([z_a, z_i], dim=-1)  # (B, T, z_a + z_i)
        skips = [per_frame(s, t) for s in skips]  # (B*T, c, s, s)
        frames = self.decoder(code.flatten(0, 1), skips)  # (B*T, 3, H, W)
        return frames.view(b, t, *frames.shape[1:]), hidden

    def load_shared(self, other: Generator) -> None:
        """Copy encoder and decoder weights from ``other`` (any variant); the GRU keeps its init."""
        state = {k: v for k, v in other.state_dict().items() if not k.startswith("gru.")}
        missing, unexpected = self.load_state_dict(state, strict=False)
        assert not unexpected and all(k.startswith("gru.") for k in missing), (missing, unexpected)
        log.info("%s initialised from %s weights", self.variant, other.variant)


def per_frame(x: torch.Tensor, t: int) -> torch.Tensor:
    """(B, C, h, w) -> (B*T, C, h, w): each sequence's map once per frame, copied in ``x``'s memory layout.

    A plain expand-and-flatten copies into NCHW; the decoder would then join
    NCHW skips to NHWC activations under channels_last, and cuDNN would convert
    every joined map back before the next convolution.
    """
    b = x.shape[0]
    if x.is_contiguous(memory_format=torch.channels_last):
        nhwc = x.movedim(1, -1)  # (B, h, w, C), contiguous
        return nhwc.unsqueeze(1).expand(b, t, *nhwc.shape[1:]).flatten(0, 1).movedim(-1, 1)
    return x.unsqueeze(1).expand(b, t, *x.shape[1:]).flatten(0, 1)


def define_G(cfg: ModelConfig, variant: str = "RAE_IA") -> Generator:
    """The generator of one of the paper's variants; raises ValueError naming the choices."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown generator variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return Generator(cfg, variant)
