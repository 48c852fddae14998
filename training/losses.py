"""Losses: the adversarial loss behind one GANLoss(mode), L1, and the optional perceptual loss."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

GAN_MODES = ("vanilla", "lsgan")

# torchvision's VGG-16 `features`: conv widths, "M" for max pool. Indices of the
# resulting nn.Sequential match torchvision, so its state dicts load unchanged.
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
# ImageNet statistics the torchvision VGG weights expect, for RGB in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class GANLoss(nn.Module):
    """Adversarial loss against a "real" or "fake" target; the target tensors stay inside.

    ``vanilla`` is the cross-entropy of Eq. 2-3 on logits; ``lsgan`` is least squares.
    """

    def __init__(self, mode: str = "vanilla") -> None:
        super().__init__()
        if mode not in GAN_MODES:
            raise ValueError(f"unknown GAN mode {mode!r}; choose one of {', '.join(GAN_MODES)}")
        self.mode = mode
        self.register_buffer("real_label", torch.tensor(1.0))
        self.register_buffer("fake_label", torch.tensor(0.0))
        self.loss = nn.BCEWithLogitsLoss() if mode == "vanilla" else nn.MSELoss()

    def forward(self, logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        """Mean loss of ``logits`` (any shape) against the real or the fake label."""
        target = self.real_label if target_is_real else self.fake_label
        return self.loss(logits.float(), target.expand_as(logits).float())


def vgg16_features(layout: tuple = VGG16_LAYOUT) -> nn.Sequential:
    """VGG-16's convolutional part, laid out exactly like torchvision's ``vgg16().features``."""
    layers: list[nn.Module] = []
    c_prev = 3
    for item in layout:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_prev, item, 3, padding=1), nn.ReLU(inplace=True)]
            c_prev = item
    return nn.Sequential(*layers)


class PerceptualLoss(nn.Module):
    """L1 between VGG-16 feature maps of generated and real frames.

    The paper uses VGG-Face features; no weights can be downloaded at run time,
    so the caller passes a state dict file: torchvision's ``vgg16`` weights, or
    VGG-Face converted to the same layout. Keys may carry a ``features.`` prefix
    (a full VGG state dict); the classifier is ignored. The network is frozen.
    """

    def __init__(self, weights: str | Path, layers: tuple[int, ...]) -> None:
        super().__init__()
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"perceptual loss weights {path} not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several unrelated types for a bad file
            raise ValueError(f"{path}: not a readable torch state dict ({exc})") from exc
        if not isinstance(state, dict):
            raise ValueError(f"{path}: holds a {type(state).__name__}, not a state dict")
        state = {k.removeprefix("features."): v for k, v in state.items() if not k.startswith("classifier.")}
        self.layers = tuple(sorted(layers))
        self.features = vgg16_features()[: self.layers[-1] + 1]
        own = self.features.state_dict()
        try:
            self.features.load_state_dict({k: state[k] for k in own})
        except (KeyError, RuntimeError) as exc:
            raise ValueError(f"{path}: not VGG-16 feature weights in torchvision layout ({exc})") from exc
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        log.info("perceptual loss: VGG-16 layers %s from %s", self.layers, path)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.features.eval()  # frozen feature network, whatever the caller's mode
        return self

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """fake, real (N, 3, H, W) in [-1, 1] -> mean L1 over the chosen feature maps."""
        x = torch.cat([fake, real]).float()
        x = ((x + 1) / 2 - self.mean) / self.std  # (2N, 3, H, W), ImageNet-normalised
        loss = x.new_zeros(())
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.layers:
                f_fake, f_real = x.chunk(2)
                loss = loss + (f_fake - f_real.detach()).abs().mean()
        return loss / len(self.layers)


def mismatch_audio(mfcc: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Audio that does not belong to the frames, for the matching-aware loss.

    The first half of the batch gets its own audio shifted in time (rolled by
    1..T-1 frames); the second half gets another sequence's audio (the batch is
    rolled by one after a random permutation). With a batch of one, shifting only.
    The draws come from ``generator`` on the CPU; the windows are gathered in one
    indexing op on ``mfcc``'s device, so no step waits for the GPU here.

    Args:
        mfcc: (B, T, 1, 12, 35), on any device.
        generator: a CPU generator; seeds the shifts and the permutation, so a step is reproducible.
    Returns:
        (B, T, 1, 12, 35) mismatched windows.
    """
    b, t = mfcc.shape[:2]
    n_shift = b if b == 1 else (b + 1) // 2
    rows = torch.arange(b)  # (B,) the sequence whose audio each row takes
    shift = torch.zeros(b, dtype=torch.long)  # (B,) frames each row is rolled by
    shift[:n_shift] = torch.randint(1, t, (n_shift,), generator=generator)
    if n_shift < b:
        order = torch.randperm(b, generator=generator)
        donors = order.roll(1)  # donors[k] != order[k]: never a sequence's own audio
        lookup = torch.empty_like(order)
        lookup[order] = donors
        rows[n_shift:] = lookup[n_shift:]
    times = (torch.arange(t)[None] - shift[:, None]) % t  # (B, T): roll(s)[i] = x[(i - s) mod T]
    return mfcc[rows[:, None].to(mfcc.device, non_blocking=True), times.to(mfcc.device, non_blocking=True)]
