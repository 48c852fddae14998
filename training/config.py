"""Configuration of the model, its losses and the training run, as typed dataclasses.

Two built-in configs: ``paper`` (the layer sizes and hyper-parameters of the
paper's appendix) and ``tiny`` (the same architecture with narrow layers and
short sequences, so it trains on a CPU in seconds for tests and demos). A TOML
file can override any field of either: see :func:`load_config`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VARIANTS = ("CAE", "RAE_A", "RAE_IA")
"""Generator variants of the paper's ablations: no recurrence, GRU over audio only, GRU over the hybrid code."""
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
"""``TrainConfig.precision`` choices: see ``training.device.precision_policy``."""


@dataclass(frozen=True)
class ModelConfig:
    """Layer sizes of the audio encoder, image encoder, GRU, decoder and discriminator."""

    image_size: int = 112  # square face crop; the encoders halve it four times to 7
    mfcc_bins: int = 12  # MFCC coefficients per window (first coefficient removed)
    mfcc_steps: int = 35  # 10 ms hops in the 350 ms audio window of one video frame
    audio_channels: tuple[int, ...] = (64, 128, 256, 256, 512)  # E_A conv widths, kernel 3
    audio_fc: int = 512  # E_A hidden FC width
    image_channels: tuple[int, ...] = (64, 128, 256, 512)  # E_I conv widths, kernel 5 stride 2
    image_fc: int = 512  # E_I hidden FC width
    z_audio: int = 256  # size of the audio code z_A
    z_image: int = 256  # size of the identity code z_I
    decoder_out_channels: int = 32  # channels of the last 112x112 deconv before the RGB layer
    disc_channels: tuple[int, ...] = (16, 32, 64, 128)  # D image trunk widths, kernel 4 stride 2
    disc_pair_channels: int = 256  # D audio-image branch: trunk conv width before joining z_A
    disc_joint_channels: int = 128  # D audio-image branch: 1x1 conv width after joining z_A
    init_gain: float = 0.02  # std of the normal init of conv / linear weights (DCGAN)


@dataclass(frozen=True)
class LossConfig:
    """Weights of F = L_rec + gamma L_per + lambda (L_G + L_D)."""

    rec_weight: float = 1.0  # L1 reconstruction
    perceptual_weight: float = 1e-4  # gamma; used only when perceptual_weights is set
    adversarial_weight: float = 1e-3  # lambda, for both the generator and discriminator terms
    gan_mode: str = "vanilla"  # "vanilla" (BCE on logits) or "lsgan" (least squares)
    perceptual_weights: str | None = None  # path of a VGG-16 state dict (torchvision layout)
    perceptual_layers: tuple[int, ...] = (3, 8, 15, 22)  # VGG-16 `features` indices compared (relu1_2..relu4_3)


@dataclass(frozen=True)
class Stage:
    """One phase of the incremental schedule."""

    name: str  # shown in logs and checkpoints
    steps: int  # optimisation steps in this stage
    variant: str  # generator variant, one of VARIANTS
    perceptual: bool  # add the perceptual loss (needs LossConfig.perceptual_weights)
    adversarial: bool  # train the discriminator and add the adversarial losses


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, data and logging settings of a run."""

    lr: float = 2e-4  # Adam learning rate, both networks
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    warmup_steps: int = 0  # linear warm-up of the learning rate at the start of each stage
    batch_size: int = 4  # sequences per step (per process under DDP)
    seq_len: int = 70  # video frames per training sequence
    num_workers: int = 2  # data-loading worker processes
    seed: int = 0  # seeds model init, batch sampling and audio mismatches
    # Speed settings (training/device.py). "auto": the fast choice on CUDA, plain float32 eager on a CPU.
    precision: str = "auto"  # auto | fp32 | fp16 | bf16; auto: bf16 on GPUs with it, else fp16 + scaler; CPU fp32
    channels_last: bool | str = "auto"  # NHWC parameters and activations; auto: on for CUDA
    compile: bool | str = "auto"  # torch.compile G and D; auto: on for CUDA (pays off after a few hundred steps)
    fused_adam: bool | str = "auto"  # fused Adam kernels; auto: on for CUDA
    deterministic: bool = False  # CUDA: deterministic kernels, no cuDNN autotuning (slower; repeats bit for bit)
    log_every: int = 10  # steps between TensorBoard loss scalars
    sample_every: int = 200  # steps between TensorBoard sample frames
    checkpoint_every: int = 500  # steps between checkpoints (one is always written at the end)
    # CAE, then + perceptual + adversarial, then the recurrent model fine-tuned from the CAE.
    schedule: tuple[Stage, ...] = (
        Stage("cae", 50_000, "CAE", perceptual=False, adversarial=False),
        Stage("cae_gan", 30_000, "CAE", perceptual=True, adversarial=True),
        Stage("rae", 50_000, "RAE_IA", perceptual=True, adversarial=True),
    )


@dataclass(frozen=True)
class Config:
    """Everything a run needs; saved in every checkpoint."""

    name: str = "paper"  # which built-in config this started from
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Config:
        """Inverse of :meth:`to_dict` (lists become tuples again)."""
        train = dict(data["train"])
        train["schedule"] = tuple(Stage(**s) for s in train["schedule"])
        return Config(
            name=data["name"],
            model=_build(ModelConfig, data["model"]),
            loss=_build(LossConfig, data["loss"]),
            train=_build(TrainConfig, train),
        )

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.train.schedule)


def _build(cls: type, values: dict[str, Any]) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}; known: {sorted(known)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def paper_config() -> Config:
    """The paper's sizes and hyper-parameters (appendix tables, Adam 2e-4 / 0.5, 70 frames)."""
    return Config()


def tiny_config() -> Config:
    """The paper's architecture at 1/8 width and 4-frame sequences: seconds per run on a CPU."""
    return Config(
        name="tiny",
        model=ModelConfig(
            audio_channels=(8, 16, 32, 32, 64), audio_fc=64, image_channels=(8, 16, 32, 64),
            image_fc=64, z_audio=32, z_image=32, decoder_out_channels=8,
            disc_channels=(4, 8, 16, 32), disc_pair_channels=32, disc_joint_channels=16,
        ),
        train=TrainConfig(
            lr=2e-3, batch_size=2, seq_len=4, num_workers=0, log_every=1, sample_every=10,
            checkpoint_every=10, compile=False,  # runs of seconds: compiling would take longer than training
            schedule=(
                Stage("cae", 4, "CAE", perceptual=False, adversarial=False),
                Stage("cae_gan", 3, "CAE", perceptual=True, adversarial=True),
                Stage("rae", 3, "RAE_IA", perceptual=True, adversarial=True),
            ),
        ),
    )


BUILTIN = {"paper": paper_config, "tiny": tiny_config}


def load_config(name_or_file: str | Path) -> Config:
    """A built-in config by name, or a TOML file of overrides.

    The file may name its starting point with ``base = "tiny"`` (default
    ``paper``) and override fields in ``[model]``, ``[loss]`` and ``[train]``
    tables; ``[[train.schedule]]`` entries replace the whole schedule.

    Raises:
        ValueError: an unknown name, a missing or malformed file, or unknown fields.
    """
    text = str(name_or_file)
    if text in BUILTIN:
        return BUILTIN[text]()
    path = Path(name_or_file)
    if not path.is_file():
        raise ValueError(f"config {text!r} is neither a built-in ({', '.join(BUILTIN)}) nor a file")
    try:
        overrides = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a valid TOML config ({exc})") from exc
    base_name = overrides.pop("base", "paper")
    if base_name not in BUILTIN:
        raise ValueError(f"{path}: base {base_name!r} is not one of {', '.join(BUILTIN)}")
    data = BUILTIN[base_name]().to_dict()
    unknown = sorted(set(overrides) - {"model", "loss", "train"})
    if unknown:
        raise ValueError(f"{path}: unknown sections {unknown}; known: model, loss, train")
    for section, values in overrides.items():
        data[section].update(values)
    data["name"] = path.stem
    try:
        config = Config.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    validate(config)
    return config


def validate(config: Config) -> None:
    """Reject configs the model cannot build, with a message naming the field."""
    for stage in config.train.schedule:
        if stage.variant not in VARIANTS:
            raise ValueError(f"stage {stage.name!r}: variant {stage.variant!r} not one of {VARIANTS}")
        if stage.steps < 0:
            raise ValueError(f"stage {stage.name!r}: negative steps")
    if config.model.image_size % 16:
        raise ValueError(f"model.image_size {config.model.image_size} must be a multiple of 16")
    for name in ("batch_size", "log_every", "sample_every", "checkpoint_every"):  # counts and step divisors
        if getattr(config.train, name) < 1:
            raise ValueError(f"train.{name} {getattr(config.train, name)} must be at least 1")
    if config.train.seq_len < 2:
        raise ValueError("train.seq_len must be at least 2 (audio shifting needs two frames)")
    if config.train.precision not in PRECISIONS:
        raise ValueError(f"train.precision {config.train.precision!r} not one of {', '.join(PRECISIONS)}")
    for name in ("channels_last", "compile", "fused_adam"):
        if getattr(config.train, name) not in (True, False, "auto"):
            raise ValueError(f"train.{name} {getattr(config.train, name)!r} must be true, false or \"auto\"")
