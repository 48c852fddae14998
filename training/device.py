"""Where the model runs and how: the device string, the numeric precision, and the speed switches.

Every choice is a small pure function of the device and the config, so the
CUDA decisions are unit-tested on a CPU: which autocast dtype and whether a
gradient scaler (:func:`precision_policy`), and what the ``auto`` switches of
``TrainConfig`` turn into (:func:`runtime_settings`).

- bfloat16 has float32's exponent range, so it needs no gradient scaler; it is
  the mixed precision of choice on GPUs that support it (Ampere and later).
  float16 needs a scaler per optimiser and is the fallback on older GPUs.
- channels_last (NHWC) is the layout cuDNN's fastest convolutions use; the
  issue measured it as the largest single gain on an H200.
- Fused Adam updates every parameter in one kernel instead of several per
  parameter, and lets a float16 scaler skip its per-step host sync.
- torch.compile fuses the many small element-wise kernels of a step that is
  bound by kernel launches rather than arithmetic.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import NamedTuple

import torch

from training.config import PRECISIONS, TrainConfig

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
COMPILE_BACKEND = "inductor"  # torch.compile's default; tests on a CPU use "aot_eager" (no C++ build)


def resolve_device(spec: str | None = "auto", local_rank: int | None = None) -> torch.device:
    """The torch device named by ``spec``, with an index on CUDA, checked to exist.

    ``auto`` (or None) is CUDA when present, else the CPU. ``cuda`` and ``auto``
    take the GPU ``local_rank`` (default ``$LOCAL_RANK``, which torchrun sets per
    process, else 0); ``cuda:N`` takes GPU N as given.

    Raises:
        ValueError: one line naming the spec, when it is malformed, CUDA is not
            available, or the GPU index is out of range.
    """
    spec = "auto" if spec is None else spec.strip().lower()
    match = re.fullmatch(r"(auto|cpu|cuda)(?::(\d+))?", spec)
    if match is None or (match[2] is not None and match[1] != "cuda"):
        raise ValueError(f"device {spec!r}: expected {DEVICE_CHOICES}")
    kind = match[1]
    if kind == "cpu" or (kind == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        built = "no GPU is visible" if torch.version.cuda else "this torch build has no CUDA support"
        raise ValueError(f"device {spec!r}: CUDA is not available ({built}); use --device cpu")
    if local_rank is None:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    index = int(match[2]) if match[2] is not None else local_rank
    count = torch.cuda.device_count()
    if index >= count:
        raise ValueError(f"device {spec!r}: GPU index {index} out of range ({count} GPU(s) visible: 0..{count - 1})")
    return torch.device("cuda", index)


class Precision(NamedTuple):
    """How the forward passes run: autocast to ``dtype`` (None: plain float32), with or without a scaler."""

    dtype: torch.dtype | None
    scaler: bool

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def precision_policy(device_type: str, bf16_supported: bool, precision: str) -> Precision:
    """The autocast dtype and gradient scaling for ``precision`` on a device.

    ``auto``: bfloat16 without a scaler on GPUs that support it, float16 with a
    scaler on older GPUs, float32 on the CPU (where autocast is slower).
    Explicit choices are honoured on any device, so the float16 path with its
    scaler, and the bfloat16 path, are exercised by CPU tests too.

    Raises:
        ValueError: an unknown precision, or bf16 asked of a GPU without it.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device_type != "cuda":
            return Precision(None, False)
        precision = "bf16" if bf16_supported else "fp16"
    if precision == "fp32":
        return Precision(None, False)
    if precision == "fp16":
        return Precision(torch.float16, True)
    if not bf16_supported:
        raise ValueError(f"precision bf16: this {device_type} device does not support bfloat16; use fp16 or fp32")
    return Precision(torch.bfloat16, False)


def switch(value: bool | str, device_type: str) -> bool:
    """A ``TrainConfig`` speed switch: True, False, or ``auto`` (on for CUDA only)."""
    return device_type == "cuda" if value == "auto" else bool(value)


@dataclass(frozen=True)
class Runtime:
    """The config's numeric and speed settings, resolved for one device."""

    device: torch.device
    precision: Precision
    channels_last: bool  # parameters and 4-D activations in NHWC
    compile: bool  # torch.compile G and D (in place: state dict keys unchanged)
    fused_adam: bool  # one fused kernel per optimiser step

    def describe(self) -> str:
        on = [name for name, flag in (("channels_last", self.channels_last), ("compiled", self.compile),
                                      ("fused Adam", self.fused_adam)) if flag]
        scaler = " with gradient scaler" if self.precision.scaler else ""
        return f"{self.device}: {self.precision.name}{scaler}" + "".join(f", {x}" for x in on)


def bf16_supported(device: torch.device) -> bool:
    """Whether the device computes in bfloat16 natively (every CPU torch supports; Ampere+ GPUs)."""
    return torch.cuda.is_bf16_supported() if device.type == "cuda" else True


def runtime_settings(cfg: TrainConfig, device: torch.device) -> Runtime:
    """``cfg``'s precision and switches resolved on ``device``."""
    return Runtime(
        device=device,
        precision=precision_policy(device.type, bf16_supported(device), cfg.precision),
        channels_last=switch(cfg.channels_last, device.type),
        compile=switch(cfg.compile, device.type),
        fused_adam=switch(cfg.fused_adam, device.type),
    )


def configure_backend(device: torch.device, deterministic: bool) -> None:
    """Process-wide CUDA settings: TF32 matmuls and convolutions, cuDNN autotuning.

    ``deterministic`` trades speed for runs that repeat bit for bit: no
    autotuning (it may pick other kernels each run) and deterministic kernels
    (a warning, not an error, for an op that has none). On a CPU it means one
    intra-op thread: with two, a tiny run's first loss differed in the 7th digit
    in about 1 of 10 runs (``test_resume_continues_identically``), with one in
    none of 12.
    """
    if device.type != "cuda":
        if deterministic:
            torch.set_num_threads(1)
        return
    torch.set_float32_matmul_precision("high")  # TF32 for float32 matmuls (cuDNN convs use it by default)
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
