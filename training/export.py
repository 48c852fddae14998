"""The generator alone, for inference: its weights as safetensors, its config in the file's header.

A training checkpoint holds both networks, both Adam optimisers (two moments
per weight) and the scalers: about 3.5 times the generator's weights, 694 MB
at the paper's sizes. ``generate`` needs only the generator, so every
checkpoint gets a ``generator_<step>.safetensors`` beside it: float32 weights
and batch-norm statistics, plus metadata (config, variant, step). safetensors
loads without unpickling anything and maps the file instead of reading it.

safetensors has no checksum, so the header also carries a CRC-32 of the
tensors, checked on read: a flipped bit must not load as a wrong weight
(the same promise ``warehouse.durable`` makes for checkpoints and shards).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import torch
from torch import nn

from training.config import Config
from warehouse.durable import write_atomically

EXPORT_FORMAT = "talkface-generator/1"
EXPORT_GLOB = "generator_*.safetensors"


def export_name(step: int) -> str:
    """The export's file name at ``step``, sorting like the checkpoints' (``ckpt_<step>.pt``)."""
    return f"generator_{step:08d}.safetensors"


def _crc32(tensors: dict[str, torch.Tensor]) -> str:
    """CRC-32 of every tensor's bytes, in name order."""
    crc = 0
    for name in sorted(tensors):
        crc = zlib.crc32(tensors[name].reshape(-1).view(torch.uint8).numpy(), crc)
    return f"{crc:08x}"


def save_export(G: nn.Module, config: Config, variant: str, step: int, path: Path) -> None:
    """Write the generator's weights and metadata to ``path``, atomically and durably.

    Raises:
        warehouse.durable.WriteFailed: naming the file, when the disk is full or failed.
    """
    from safetensors.torch import save

    # contiguous: channels_last weights are stored (and loaded) in the standard layout.
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in G.state_dict().items()}
    metadata = {"format": EXPORT_FORMAT, "config": json.dumps(config.to_dict()), "variant": variant,
                "step": str(step), "crc32": _crc32(tensors)}
    data = save(tensors, metadata=metadata)
    write_atomically(path, lambda handle: handle.write(data), "export")


def read_export(path: Path) -> tuple[dict[str, torch.Tensor], Config, str, int]:
    """The state dict, config, variant and step of the export at ``path``.

    Raises:
        ValueError: one line naming the file, when it is truncated, corrupt or not a generator export.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as exc:  # safetensors raises its own error type, OSError or ValueError
        reason = " ".join(str(exc).split())
        raise ValueError(f"{path}: not a readable generator export ({reason})") from exc
    if metadata.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{path}: not a talkface generator export (format {metadata.get('format')!r})")
    if _crc32(tensors) != metadata.get("crc32"):
        raise ValueError(f"{path}: not a readable generator export (CRC-32 mismatch: the file is damaged)")
    return (tensors, *_header(path, metadata))


def _header(path: Path, metadata: dict[str, str]) -> tuple[Config, str, int]:
    """The config, variant and step in the export's header.

    The CRC-32 covers the tensors, not the header: a damaged header shows here, as
    text that is not JSON, a key that is not a config field, or a missing entry.

    Raises:
        ValueError: one line naming the file.
    """
    try:
        return Config.from_dict(json.loads(metadata["config"])), metadata["variant"], int(metadata["step"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable generator export (damaged header: {exc!r})") from exc
