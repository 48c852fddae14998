"""The training loop: incremental schedule, GAN step rhythm, AMP, DDP, checkpoints, TensorBoard.

One process per device. Under ``torchrun`` every process trains on its own
batches (rank r of R takes global batches r, r+R, ...) and DDP averages the
gradients; NCCL on CUDA, gloo on CPU. On CUDA the forward passes run in
float16 autocast with a gradient scaler per optimiser.

Every source of randomness is seeded from (seed, step) or (seed, stage), so a
run resumed from a checkpoint takes exactly the steps the uninterrupted run
would have taken.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from training.config import Config, Stage
from training.data import ClipRef, ShardStream, make_loader, next_batch
from training.discriminator import define_D
from training.generator import Generator, define_G
from training.losses import GANLoss, PerceptualLoss, mismatch_audio
from training.schedule import learning_rate, stage_index
from warehouse.durable import check_zip, write_atomically

log = logging.getLogger(__name__)

CHECKPOINT_GLOB = "ckpt_*.pt"


@dataclass
class Dist:
    """Where this process sits in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str | None = None) -> Dist:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1; pick CUDA when present."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return Dist(rank=rank, world_size=world_size, device=dev)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (or the module itself)."""
    return model.module if isinstance(model, DDP) else model


def set_requires_grad(model: nn.Module, flag: bool) -> None:
    for p in model.parameters():
        p.requires_grad_(flag)


@dataclass
class TrainState:
    """Everything that changes during a run and goes into a checkpoint."""

    config: Config
    dist: Dist
    stage: int  # index into config.train.schedule that G was built for
    G: nn.Module
    D: nn.Module
    opt_G: torch.optim.Adam
    opt_D: torch.optim.Adam
    scaler_G: torch.amp.GradScaler
    scaler_D: torch.amp.GradScaler
    step: int = 0  # optimisation steps done

    @property
    def use_amp(self) -> bool:
        return self.config.train.amp and self.dist.device.type == "cuda"

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.float16) if self.use_amp else nullcontext()


def _wrap(model: nn.Module, d: Dist) -> nn.Module:
    model = model.to(d.device)
    if d.world_size > 1:
        return DDP(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)
    return model


def _adam(model: nn.Module, config: Config) -> torch.optim.Adam:
    t = config.train
    return torch.optim.Adam(model.parameters(), lr=t.lr, betas=(t.beta1, t.beta2))


def build_generator(config: Config, stage: int) -> Generator:
    """The generator of ``stage``, initialised from (seed, stage) without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed + stage)
        return define_G(config.model, config.train.schedule[stage].variant)


def build_state(config: Config, d: Dist, stage: int = 0) -> TrainState:
    """Fresh networks, optimisers and scalers for a run starting in ``stage``."""
    G = _wrap(build_generator(config, stage), d)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed + 10_000)
        D = _wrap(define_D(config.model), d)
    amp = config.train.amp and d.device.type == "cuda"
    return TrainState(
        config=config, dist=d, stage=stage, G=G, D=D, opt_G=_adam(G, config), opt_D=_adam(D, config),
        scaler_G=torch.amp.GradScaler("cuda", enabled=amp),
        scaler_D=torch.amp.GradScaler("cuda", enabled=amp),
    )


def enter_stage(state: TrainState, stage: int) -> None:
    """Move to ``stage``; a new generator variant starts from the current encoder/decoder weights."""
    schedule = state.config.train.schedule
    old, new = schedule[state.stage], schedule[stage]
    log.info("step %d: stage %s (%s)", state.step, new.name, new.variant)
    if new.variant != old.variant:
        G = build_generator(state.config, stage)
        G.load_shared(unwrap(state.G))
        state.G = _wrap(G, state.dist)
        state.opt_G = _adam(state.G, state.config)
        state.scaler_G = torch.amp.GradScaler("cuda", enabled=state.use_amp)
    state.stage = stage


class Losses(nn.Module):
    """The loss terms of one stage: L1, optional perceptual, adversarial."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.weights = config.loss
        self.gan = GANLoss(config.loss.gan_mode)
        self.perceptual = (PerceptualLoss(config.loss.perceptual_weights, config.loss.perceptual_layers)
                           if config.loss.perceptual_weights else None)
        if self.perceptual is None and any(s.perceptual for s in config.train.schedule):
            log.warning("no loss.perceptual_weights given: the perceptual loss is skipped")


def train_step(state: TrainState, losses: Losses, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """One optimisation step: forward, then backward_D on fake.detach(), then backward_G."""
    stage: Stage = state.config.train.schedule[state.stage]
    dev = state.dist.device
    reference = batch["reference"].to(dev, non_blocking=True)  # (B, 3, H, W)
    real = batch["frames"].to(dev, non_blocking=True)  # (B, T, 3, H, W)
    mfcc = batch["mfcc"].to(dev, non_blocking=True)  # (B, T, 1, 12, 35)
    out: dict[str, float] = {}

    with state.autocast():
        fake, _ = state.G(reference, mfcc)  # (B, T, 3, H, W)
    real_f, fake_f, mfcc_f = real.flatten(0, 1), fake.flatten(0, 1), mfcc.flatten(0, 1)  # (B*T, ...)

    if stage.adversarial:  # backward_D
        gen = torch.Generator().manual_seed(state.config.train.seed * 1_000_003 + state.step)
        wrong = mismatch_audio(batch["mfcc"], gen).to(dev).flatten(0, 1)  # (B*T, 1, 12, 35)
        set_requires_grad(state.D, True)
        state.opt_D.zero_grad(set_to_none=True)
        with state.autocast():
            patch, match = state.D(torch.cat([real_f, fake_f.detach(), real_f]),
                                   torch.cat([mfcc_f, mfcc_f, wrong]))
            p_real, p_fake, _ = patch.chunk(3)  # (B*T, 1, 7, 7) each
            m_real, m_fake, m_wrong = match.chunk(3)  # (B*T, 1) each
            d_image = 0.5 * (losses.gan(p_real, True) + losses.gan(p_fake, False))
            d_match = 0.5 * losses.gan(m_real, True) + 0.25 * (losses.gan(m_fake, False)
                                                             + losses.gan(m_wrong, False))
            loss_D = d_image + d_match
        state.scaler_D.scale(loss_D).backward()
        state.scaler_D.step(state.opt_D)
        state.scaler_D.update()
        set_requires_grad(state.D, False)
        out.update(D_image=d_image.item(), D_match=d_match.item())

    state.opt_G.zero_grad(set_to_none=True)  # backward_G
    w = losses.weights
    with state.autocast():
        rec = (fake.float() - real).abs().mean()
        total = w.rec_weight * rec
        out["rec"] = rec.item()
        if stage.perceptual and losses.perceptual is not None:
            per = losses.perceptual(fake_f, real_f)
            total = total + w.perceptual_weight * per
            out["perceptual"] = per.item()
        if stage.adversarial:
            # Unwrapped D: its parameters take no gradient here, so DDP must not expect any.
            patch, match = unwrap(state.D)(fake_f, mfcc_f)
            g_adv = losses.gan(patch, True) + losses.gan(match, True)
            total = total + w.adversarial_weight * g_adv
            out["G_adv"] = g_adv.item()
    state.scaler_G.scale(total).backward()
    state.scaler_G.step(state.opt_G)
    state.scaler_G.update()
    out["total_G"] = total.item()
    state.step += 1
    return out


def checkpoint_dict(state: TrainState) -> dict:
    """Model, optimisers, scalers, config and step: all a resumed run needs."""
    return {
        "model": {"G": unwrap(state.G).state_dict(), "D": unwrap(state.D).state_dict()},
        "optimizer": {"G": state.opt_G.state_dict(), "D": state.opt_D.state_dict()},
        "scaler": {"G": state.scaler_G.state_dict(), "D": state.scaler_D.state_dict()},
        "config": state.config.to_dict(),
        "stage": state.stage,
        "variant": unwrap(state.G).variant,
        "step": state.step,
    }


def save_checkpoint(state: TrainState, run_dir: Path) -> Path:
    """Write ``ckpt_<step>.pt`` atomically and durably: a killed or failed write leaves no
    file that matches ``CHECKPOINT_GLOB`` (fault points ``checkpoint.write``, ``checkpoint.written``).

    Raises:
        warehouse.durable.WriteFailed: naming the checkpoint, when the disk is full or failed.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / f"ckpt_{state.step:08d}.pt"
    write_atomically(path, lambda handle: torch.save(checkpoint_dict(state), handle), "checkpoint")
    log.info("checkpoint %s", path)
    return path


def latest_checkpoint(path: Path) -> Path:
    """``path`` itself if a file, else the checkpoint with the highest step in the run folder.

    The hidden temporary file of a write that was killed (``.ckpt_<step>.pt.<random>.tmp``)
    never matches ``CHECKPOINT_GLOB``.

    Raises:
        FileNotFoundError: naming the path, when there is no checkpoint.
    """
    if path.is_file():
        return path
    found = sorted(path.glob(CHECKPOINT_GLOB)) if path.is_dir() else []
    if not found:
        raise FileNotFoundError(f"no checkpoint at {path} (expected a .pt file or a run folder with {CHECKPOINT_GLOB})")
    return found[-1]


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint dict at ``path`` (a file or run folder).

    The zip's CRC-32s are checked first: ``torch.load`` ignores them, and a
    flipped bit in a tensor would otherwise load as a wrong weight.

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        ValueError: one line naming the file, when it is truncated, corrupt or not a checkpoint.
    """
    path = latest_checkpoint(path)
    try:
        check_zip(path)
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # zipfile and torch raise several unrelated types for a bad file
        reason = " ".join(str(exc).split())  # torch's messages run over several lines
        raise ValueError(f"{path}: not a readable talkface checkpoint ({reason})") from exc
    if not isinstance(ckpt, dict) or not {"model", "config", "step"} <= set(ckpt):
        raise ValueError(f"{path}: not a talkface checkpoint (needs model, config and step)")
    return ckpt


def restore_state(ckpt: dict, d: Dist) -> TrainState:
    """A TrainState positioned exactly where ``ckpt`` was written."""
    config = Config.from_dict(ckpt["config"])
    state = build_state(config, d, stage=ckpt["stage"])
    unwrap(state.G).load_state_dict(ckpt["model"]["G"])
    unwrap(state.D).load_state_dict(ckpt["model"]["D"])
    state.opt_G.load_state_dict(ckpt["optimizer"]["G"])
    state.opt_D.load_state_dict(ckpt["optimizer"]["D"])
    state.scaler_G.load_state_dict(ckpt["scaler"]["G"])
    state.scaler_D.load_state_dict(ckpt["scaler"]["D"])
    state.step = ckpt["step"]
    return state


def sample_image(real: torch.Tensor, fake: torch.Tensor, n: int = 8) -> torch.Tensor:
    """First sequence's frames, real above generated: (3, 2H, nW) in [0, 1] for TensorBoard."""
    top = torch.cat(list(real[0, :n]), dim=-1)  # (3, H, n*W)
    bottom = torch.cat(list(fake[0, :n].float()), dim=-1)
    return ((torch.cat([top, bottom], dim=-2) + 1) / 2).clamp(0, 1)


def train(config: Config, clips: list[ClipRef], run_dir: Path, steps: int | None = None,
          device: str | None = None) -> list[dict[str, float]]:
    """Train until global step ``steps`` (default: the end of the schedule), resuming from
    the latest checkpoint in ``run_dir`` if there is one (its config then wins).

    Returns:
        One record per step taken here: the loss terms, ``step``, ``stage``,
        ``data_s`` (waiting for the batch) and ``step_s`` (whole step).
    """
    d = setup_distributed(device)
    log.info("rank %d of world size %d on %s", d.rank, d.world_size, d.device)
    existing = sorted(run_dir.glob(CHECKPOINT_GLOB)) if run_dir.is_dir() else []
    if existing:
        state = restore_state(load_checkpoint(existing[-1]), d)
        if state.config != config:
            log.warning("resuming %s with the config saved in its checkpoint", run_dir)
        config = state.config
        log.info("resumed from %s at step %d", existing[-1], state.step)
    else:
        state = build_state(config, d)
    end = config.total_steps if steps is None else steps
    losses = Losses(config).to(d.device)
    t = config.train
    stream = ShardStream(clips, t.batch_size, t.seq_len, t.seed, start_batch=state.step,
                         rank=d.rank, world_size=d.world_size)
    batches = iter(make_loader(stream, t.num_workers))
    writer = None
    if d.is_main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb"))
    history = []
    try:
        while state.step < end:
            t0 = time.perf_counter()
            index = stage_index(t.schedule, state.step)
            if index != state.stage:
                enter_stage(state, index)
            for opt in (state.opt_G, state.opt_D):
                for group in opt.param_groups:
                    group["lr"] = learning_rate(t, state.step)
            batch = next_batch(batches)
            t1 = time.perf_counter()
            record = train_step(state, losses, batch)
            if d.device.type == "cuda":
                torch.cuda.synchronize(d.device)
            record.update(step=state.step, stage=index, data_s=t1 - t0, step_s=time.perf_counter() - t0)
            history.append(record)
            if writer is not None and state.step % t.log_every == 0:
                for key, value in record.items():
                    if key not in ("step", "stage"):
                        writer.add_scalar(f"loss/{key}" if not key.endswith("_s") else f"time/{key}", value,
                                          state.step)
                log.info("step %d %s", state.step,
                         " ".join(f"{k}={v:.4f}" for k, v in record.items() if k not in ("step", "stage")))
            if writer is not None and state.step % t.sample_every == 0:
                G = unwrap(state.G).eval()  # inference statistics, and no update of them
                with torch.no_grad(), state.autocast():
                    fake, _ = G(batch["reference"][:1].to(d.device), batch["mfcc"][:1].to(d.device))
                G.train()
                writer.add_image("samples/real_top_generated_bottom",
                                 sample_image(batch["frames"][:1], fake.cpu()), state.step)
            if d.is_main and (state.step % t.checkpoint_every == 0 or state.step == end):
                save_checkpoint(state, run_dir)
    finally:
        if writer is not None:
            writer.close()
        if dist.is_initialized():
            dist.barrier()
    return history
