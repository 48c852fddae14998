"""Every network's tensor shapes against the paper's appendix tables, at the paper's sizes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from training.config import ModelConfig, paper_config, tiny_config
from training.discriminator import define_D
from training.generator import define_G, per_frame

PAPER = ModelConfig()


def _shapes(module: torch.nn.Module, children: list[str], run) -> dict[str, tuple[int, ...]]:
    """Output shapes (without the batch dim) of named submodules during ``run()``."""
    seen: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(mod, inputs, output) -> None:
            seen.setdefault(name, tuple(output.shape[1:]))
        return hook

    hooks = [module.get_submodule(name).register_forward_hook(record(name)) for name in children]
    with torch.no_grad():
        run()
    for h in hooks:
        h.remove()
    return seen


@pytest.fixture(scope="module")
def generator() -> torch.nn.Module:
    return define_G(PAPER, "RAE_IA").eval()


def test_audio_encoder_follows_table(generator):
    enc = generator.audio_encoder
    shapes = _shapes(enc, ["convs.0", "convs.1", "convs.2", "convs.5", "convs.6", "fc.2", "fc.3"],
                     lambda: enc(torch.randn(2, 1, 12, 35)))
    assert shapes == {
        "convs.0": (64, 12, 35), "convs.1": (128, 12, 35), "convs.2": (128, 12, 18),
        "convs.5": (512, 12, 18), "convs.6": (512, 6, 9), "fc.2": (512,), "fc.3": (256,),
    }


def test_image_encoder_follows_table(generator):
    z, skips = generator.image_encoder(torch.randn(2, 3, 112, 112))
    assert z.shape == (2, 256)
    assert [tuple(s.shape[1:]) for s in skips] == [(64, 56, 56), (128, 28, 28), (256, 14, 14)]
    shapes = _shapes(generator.image_encoder, ["convs.3", "fc.1"],
                     lambda: generator.image_encoder(torch.randn(2, 3, 112, 112)))
    assert shapes == {"convs.3": (512, 7, 7), "fc.1": (512,)}


def test_decoder_follows_table_with_unet_skips(generator):
    dec = generator.decoder
    _, skips = generator.image_encoder(torch.randn(2, 3, 112, 112))
    shapes = _shapes(dec, ["fc", "up.0", "up.1", "up.2", "up.3", "to_rgb"],
                     lambda: dec(torch.randn(2, 512), skips))
    assert shapes["fc"] == (25088,)  # 7x7x512
    # each deconv's output is joined with an encoder map of the same size: 256+256, 128+128, 64+64
    assert shapes["up.0"] == (256, 14, 14) and shapes["up.1"] == (128, 28, 28)
    assert shapes["up.2"] == (64, 56, 56) and shapes["up.3"] == (32, 112, 112)
    assert shapes["to_rgb"] == (3, 112, 112)
    assert dec.up[1][0].in_channels == 512 and dec.up[2][0].in_channels == 256
    assert dec.up[3][0].in_channels == 128


def test_discriminator_follows_table():
    D = define_D(PAPER).eval()
    frames, mfcc = torch.randn(3, 3, 112, 112), torch.randn(3, 1, 12, 35)
    shapes = _shapes(D, ["trunk.1", "trunk.3", "trunk.5", "trunk.7", "pair", "joint"], lambda: D(frames, mfcc))
    assert shapes == {"trunk.1": (16, 56, 56), "trunk.3": (32, 28, 28), "trunk.5": (64, 14, 14),
                      "trunk.7": (128, 7, 7), "pair": (256, 4, 4), "joint": (128, 4, 4)}
    assert D.joint[0].in_channels == 256 + 256  # trunk branch + tiled z_A
    patch, match = D(frames, mfcc)
    assert patch.shape == (3, 1, 7, 7) and match.shape == (3, 1)


def test_discriminator_step_judges_each_image_and_audio_window_once():
    """D(real + fake, mfcc, wrong): the logits one pass over [real, fake, real] with [mfcc, mfcc, wrong]
    would give (in eval mode, where batch norm does not depend on the batch), with a third less work."""
    D = define_D(tiny_config().model).eval()
    real, fake = torch.randn(4, 3, 112, 112), torch.randn(4, 3, 112, 112)
    mfcc, wrong = torch.randn(4, 1, 12, 35), torch.randn(4, 1, 12, 35)
    with torch.no_grad():
        patch, match = D(torch.cat([real, fake]), mfcc, wrong)
        patch_3, match_3 = D(torch.cat([real, fake, real]), torch.cat([mfcc, mfcc, wrong]))
    assert patch.shape == (8, 1, 7, 7) and match.shape == (12, 1)
    torch.testing.assert_close(patch, patch_3[:8])
    torch.testing.assert_close(match, match_3)


@pytest.mark.parametrize("variant, hidden", [("CAE", None), ("RAE_A", 32), ("RAE_IA", 64)])
def test_generator_variants_give_one_frame_per_window(variant, hidden):
    G = define_G(tiny_config().model, variant).eval()  # tiny: z_audio = z_image = 32
    frames, h = G(torch.rand(2, 3, 112, 112) * 2 - 1, torch.randn(2, 5, 1, 12, 35))
    assert frames.shape == (2, 5, 3, 112, 112)
    assert frames.abs().max() <= 1.0  # tanh output
    if hidden is None:
        assert h is None and G.gru is None
    else:
        assert h.shape == (1, 2, hidden)


def test_skips_are_repeated_per_frame_in_their_memory_layout():
    """Under channels_last the decoder joins NHWC skips to NHWC activations: no layout conversions."""
    x = torch.randn(2, 8, 5, 5)
    for layout in (torch.contiguous_format, torch.channels_last):
        y = per_frame(x.contiguous(memory_format=layout), 3)
        assert torch.equal(y, x.repeat_interleave(3, dim=0)) and y.is_contiguous(memory_format=layout)


def test_paper_gru_runs_over_the_512_hybrid_code(generator):
    assert generator.gru.input_size == 512 and generator.gru.hidden_size == 512


def test_gru_is_orthogonally_initialised(generator):
    for name in ("weight_hh_l0", "weight_ih_l0"):
        for gate in getattr(generator.gru, name).detach().chunk(3):
            assert torch.allclose(gate @ gate.T, torch.eye(gate.shape[0]), atol=1e-4)


def test_recurrent_variant_carries_state_across_chunks():
    G = define_G(tiny_config().model, "RAE_IA").eval()
    ref, mfcc = torch.rand(1, 3, 112, 112) * 2 - 1, torch.randn(1, 6, 1, 12, 35)
    with torch.no_grad():
        whole, _ = G(ref, mfcc)
        first, h = G(ref, mfcc[:, :4])
        second, h_carried = G(ref, mfcc[:, 4:], h)
        _, h_fresh = G(ref, mfcc[:, 4:])
    assert torch.allclose(torch.cat([first, second], 1), whole, rtol=1e-4, atol=1e-7)
    assert (h_carried - h_fresh).abs().max() > 0.01 * h_fresh.abs().max()  # the carried state matters


def test_recurrent_model_starts_from_cae_weights():
    cfg = tiny_config().model
    cae, rae = define_G(cfg, "CAE"), define_G(cfg, "RAE_IA")
    rae.load_shared(cae)
    for key, value in cae.state_dict().items():
        assert torch.equal(rae.state_dict()[key], value)


def test_unknown_variant_names_the_choices():
    with pytest.raises(ValueError, match="CAE, RAE_A, RAE_IA"):
        define_G(PAPER, "RAE_X")
    with pytest.raises(ValueError, match="multitask"):
        define_D(PAPER, "patchgan")


def test_training_step_flops_count_forward_and_backward():
    """Counted on the meta device (training.flops): paper sizes in a second, no arithmetic done."""
    from training.flops import flops_per_frame, step_flops

    # The decoder's transposed convolutions by hand: C_in x C_out x 5 x 5 x input side², two FLOPs a MAC.
    sides = [(512, 256, 7), (512, 128, 14), (256, 64, 28), (128, 32, 56), (32, 3, 112)]
    decoder = 2 * sum(c_in * c_out * 25 * side**2 for c_in, c_out, side in sides)  # 2.31 GFLOP a frame
    paper = paper_config()
    cae, adversarial = flops_per_frame(paper, 0), flops_per_frame(paper, 2)
    assert 3 * decoder < cae < 1.6 * 3 * decoder  # backward ~ twice the forward; the decoder is most of G
    assert adversarial > 1.5 * cae  # plus D's step and D's forward for G
    tiny = tiny_config()
    double = dataclasses.replace(tiny, train=dataclasses.replace(tiny.train, batch_size=2 * tiny.train.batch_size))
    assert step_flops(double, 2) == 2 * step_flops(tiny, 2)  # per sequence and per frame work alike scale with B
