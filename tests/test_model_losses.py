"""The optional perceptual loss: loads a VGG-16 state dict from a path, or fails naming it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from training.config import tiny_config
from training.losses import PerceptualLoss, vgg16_features
from training.train import Dist, Losses, build_state, train_step


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory):
    """A random VGG-16 `features` state dict in torchvision's key layout (real weights cannot be downloaded here)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vgg") / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in vgg16_features()[:9].state_dict().items()}
               | {"classifier.0.weight": torch.zeros(2, 2)}, path)
    return path


def test_perceptual_loss_compares_feature_maps(vgg_weights):
    loss = PerceptualLoss(vgg_weights, layers=(3, 8))
    a, b = torch.rand(2, 3, 112, 112) * 2 - 1, torch.rand(2, 3, 112, 112) * 2 - 1
    assert loss(a, a).item() == 0.0
    assert loss(a, b).item() > 0.0
    assert not any(p.requires_grad for p in loss.parameters())
    fake = a.clone().requires_grad_(True)
    loss(fake, b).backward()
    assert fake.grad.abs().sum() > 0  # gradients reach the generated frames


def test_perceptual_loss_errors_name_the_file(tmp_path, vgg_weights):
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        PerceptualLoss(tmp_path / "missing.pth", layers=(3,))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not torch")
    with pytest.raises(ValueError, match="junk.pth"):
        PerceptualLoss(junk, layers=(3,))
    with pytest.raises(ValueError, match="vgg16.pth: not VGG-16 feature weights"):
        PerceptualLoss(vgg_weights, layers=(22,))  # the file only holds layers up to 8


def test_perceptual_term_joins_the_generator_loss(vgg_weights):
    from fixtures.training_shards import synthetic_clip

    config = tiny_config()
    config = dataclasses.replace(config, loss=dataclasses.replace(
        config.loss, perceptual_weights=str(vgg_weights), perceptual_layers=(3, 8)))
    frames, mfcc = synthetic_clip(4, seed=1)
    batch = {"reference": torch.from_numpy(frames[:1]), "frames": torch.from_numpy(frames[None]),
             "mfcc": torch.from_numpy(mfcc)[None, :, None]}
    out = {k: v.item() for k, v in train_step(build_state(config, Dist(), stage=1), Losses(config), batch).items()}
    assert out["perceptual"] > 0
    expected = out["rec"] + 1e-4 * out["perceptual"] + 1e-3 * out["G_adv"]
    assert out["total_G"] == pytest.approx(expected, rel=1e-5)
