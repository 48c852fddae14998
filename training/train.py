"""The training loop: incremental schedule, GAN step rhythm, mixed precision, DDP, checkpoints, TensorBoard.

One process per device. Under ``torchrun`` every process trains on its own
batches (rank r of R takes global batches r, r+R, ...) and DDP averages the
gradients; NCCL on CUDA, gloo on CPU. Precision, memory layout, compilation
and the Adam kernels follow the config's switches as resolved for the device
(``training.device``): on CUDA by default bfloat16 autocast (float16 with a
gradient scaler on GPUs without bfloat16), channels_last, torch.compile and
fused Adam; on a CPU plain float32.

A step never waits for the GPU: the loss terms stay on the device, summed,
and are read once per ``log_every`` steps, when the loop also logs its speed.

Every source of randomness is seeded from (seed, step) or (seed, stage), so a
run resumed from a checkpoint takes exactly the steps the uninterrupted run
would have taken.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from training.config import Config, Stage
from training.data import ClipRef, ShardStream, long_enough, make_loader, next_batch, to_model_frames
from training.device import COMPILE_BACKEND, Runtime, configure_backend, resolve_device, runtime_settings
from training.discriminator import define_D
from training.export import export_name, save_export
from training.generator import Generator, define_G
from training.losses import GANLoss, PerceptualLoss, mismatch_audio
from training.progress import LossWindow, Mark, measure, report
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
    """Join the torchrun process group when ``WORLD_SIZE`` > 1, on the device ``device`` names.

    ``device`` is ``auto`` (None), ``cpu``, ``cuda`` or ``cuda:N``; under torchrun
    ``auto`` and ``cuda`` mean GPU ``LOCAL_RANK``, one per process.

    Raises:
        ValueError: one line, when the device is malformed or absent, or several
            processes would share one GPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world_size > 1 and dev.type == "cuda" and dev.index != local_rank:
        raise ValueError(f"device {device!r} under torchrun: give cuda or auto, so that each process "
                         f"takes GPU LOCAL_RANK (this is LOCAL_RANK {local_rank})")
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
    runtime: Runtime  # the config's precision and speed switches on this device
    stage: int  # index into config.train.schedule that G was built for
    G: nn.Module
    D: nn.Module
    opt_G: torch.optim.Adam
    opt_D: torch.optim.Adam
    scaler_G: torch.amp.GradScaler  # enabled only for float16
    scaler_D: torch.amp.GradScaler
    step: int = 0  # optimisation steps done
    clips: str = ""  # digest of the clips trained on (clips_digest); "" in checkpoints written before it

    def autocast(self):
        dtype = self.runtime.precision.dtype
        return torch.autocast(self.dist.device.type, dtype=dtype) if dtype is not None else nullcontext()


def _place(model: nn.Module, d: Dist, runtime: Runtime) -> nn.Module:
    """``model`` on the device, in the runtime's layout, compiled in place (state dict keys kept), in DDP."""
    model = model.to(d.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if runtime.compile:
        model.compile(backend=COMPILE_BACKEND)
    if d.world_size > 1:
        return DDP(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)
    return model


def _adam(model: nn.Module, config: Config, runtime: Runtime) -> torch.optim.Adam:
    t = config.train
    # fused=None: torch's default kernels (for-each on CUDA, a loop per parameter on a CPU).
    return torch.optim.Adam(model.parameters(), lr=t.lr, betas=(t.beta1, t.beta2),
                            fused=True if runtime.fused_adam else None)


def _scaler(runtime: Runtime) -> torch.amp.GradScaler:
    return torch.amp.GradScaler(runtime.device.type, enabled=runtime.precision.scaler)


def build_generator(config: Config, stage: int) -> Generator:
    """The generator of ``stage``, initialised from (seed, stage) without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed + stage)
        return define_G(config.model, config.train.schedule[stage].variant)


def build_state(config: Config, d: Dist, stage: int = 0) -> TrainState:
    """Fresh networks, optimisers and scalers for a run starting in ``stage``."""
    runtime = runtime_settings(config.train, d.device)
    G = _place(build_generator(config, stage), d, runtime)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed + 10_000)
        D = _place(define_D(config.model), d, runtime)
    return TrainState(
        config=config, dist=d, runtime=runtime, stage=stage, G=G, D=D,
        opt_G=_adam(G, config, runtime), opt_D=_adam(D, config, runtime),
        scaler_G=_scaler(runtime), scaler_D=_scaler(runtime),
    )


def enter_stage(state: TrainState, stage: int) -> None:
    """Move to ``stage``; a new generator variant starts from the current encoder/decoder weights."""
    schedule = state.config.train.schedule
    old, new = schedule[state.stage], schedule[stage]
    log.info("step %d: stage %s (%s)", state.step, new.name, new.variant)
    if new.variant != old.variant:
        G = build_generator(state.config, stage)
        G.load_shared(unwrap(state.G))
        state.G = _place(G, state.dist, state.runtime)
        state.opt_G = _adam(state.G, state.config, state.runtime)
        state.scaler_G = _scaler(state.runtime)
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


def _optimise(scaler: torch.amp.GradScaler, optimiser: torch.optim.Adam, loss: torch.Tensor) -> None:
    """Backward and update; a disabled scaler passes the loss and the step straight through.

    An enabled (float16) scaler checks the gradients for inf/NaN: with fused
    Adam on the device, without fused Adam by reading the check back to the host.
    """
    scaler.scale(loss).backward()
    scaler.step(optimiser)
    scaler.update()


def train_step(state: TrainState, losses: Losses, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One optimisation step: forward, then backward_D on fake.detach(), then backward_G.

    G runs once; D runs once on real and generated frames with their audio and
    real frames with mismatched audio, then once more on the generated frames
    for G's adversarial loss (D has changed in between, as the GAN rhythm needs).

    Returns:
        The loss terms as detached 0-dim tensors on the device: reading one
        (``.item()``) waits for the GPU, so the loop does it only when it logs.
    """
    stage: Stage = state.config.train.schedule[state.stage]
    dev = state.dist.device
    reference = to_model_frames(batch["reference"].to(dev, non_blocking=True))  # (B, 3, H, W), NHWC memory
    real = to_model_frames(batch["frames"].to(dev, non_blocking=True))  # (B, T, 3, H, W)
    mfcc = batch["mfcc"].to(dev, non_blocking=True)  # (B, T, 1, 12, 35)
    out: dict[str, torch.Tensor] = {}

    with state.autocast():
        fake, _ = state.G(reference, mfcc)  # (B, T, 3, H, W)
    real_f, fake_f, mfcc_f = real.flatten(0, 1), fake.flatten(0, 1), mfcc.flatten(0, 1)  # (B*T, ...)

    if stage.adversarial:  # backward_D
        gen = torch.Generator().manual_seed(state.config.train.seed * 1_000_003 + state.step)
        wrong = mismatch_audio(mfcc, gen).flatten(0, 1)  # (B*T, 1, 12, 35)
        set_requires_grad(state.D, True)
        state.opt_D.zero_grad(set_to_none=True)
        with state.autocast():
            patch, match = state.D(torch.cat([real_f, fake_f.detach()]), mfcc_f, wrong)
            p_real, p_fake = patch.chunk(2)  # (B*T, 1, 7, 7) each
            m_real, m_fake, m_wrong = match.chunk(3)  # (B*T, 1) each
            d_image = 0.5 * (losses.gan(p_real, True) + losses.gan(p_fake, False))
            d_match = 0.5 * losses.gan(m_real, True) + 0.25 * (losses.gan(m_fake, False)
                                                             + losses.gan(m_wrong, False))
            loss_D = d_image + d_match
        _optimise(state.scaler_D, state.opt_D, loss_D)
        set_requires_grad(state.D, False)
        out.update(D_image=d_image.detach(), D_match=d_match.detach())

    state.opt_G.zero_grad(set_to_none=True)  # backward_G
    w = losses.weights
    with state.autocast():
        rec = (fake.float() - real).abs().mean()
        total = w.rec_weight * rec
        out["rec"] = rec.detach()
        if stage.perceptual and losses.perceptual is not None:
            per = losses.perceptual(fake_f, real_f)
            total = total + w.perceptual_weight * per
            out["perceptual"] = per.detach()
        if stage.adversarial:
            # Unwrapped D: its parameters take no gradient here, so DDP must not expect any.
            patch, match = unwrap(state.D)(fake_f, mfcc_f)
            g_adv = losses.gan(patch, True) + losses.gan(match, True)
            total = total + w.adversarial_weight * g_adv
            out["G_adv"] = g_adv.detach()
    _optimise(state.scaler_G, state.opt_G, total)
    out["total_G"] = total.detach()
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
        "clips": state.clips,
    }


def clips_digest(clips: list[ClipRef]) -> str:
    """What a run trains on, in 16 hex digits: the batches a step draws follow from it (and the seed)."""
    listing = "\n".join(f"{c.clip_id}\t{c.n_frames}" for c in sorted(clips, key=lambda c: c.clip_id))
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def save_checkpoint(state: TrainState, run_dir: Path) -> Path:
    """Write the generator export ``generator_<step>.safetensors``, then ``ckpt_<step>.pt``,
    each atomically and durably: a killed or failed write leaves no file that matches
    ``CHECKPOINT_GLOB`` (fault points ``export.write``, ``checkpoint.write``, ``checkpoint.written``).

    The export goes first, so every checkpoint has its export; a run killed between
    the two resumes from the previous checkpoint and writes both again.

    Raises:
        warehouse.durable.WriteFailed: naming the file, when the disk is full or failed.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    G = unwrap(state.G)
    save_export(G, state.config, G.variant, state.step, run_dir / export_name(state.step))
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


def checkpoint_step(path: Path) -> int:
    """The step of the checkpoint at ``path`` (a file, or a run folder's latest): where a run stands,
    also when it had nothing left to do.

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        ValueError: the checkpoint is damaged (see :func:`load_checkpoint`).
    """
    return int(load_checkpoint(path)["step"])


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
    train_config = ckpt["config"]["train"]
    if "amp" in train_config:  # written before `precision` replaced `amp` (float16 autocast on CUDA if true)
        train_config["precision"] = "auto" if train_config.pop("amp") else "fp32"
    return ckpt


def restore_state(ckpt: dict, d: Dist) -> TrainState:
    """A TrainState positioned exactly where ``ckpt`` was written."""
    config = Config.from_dict(ckpt["config"])
    state = build_state(config, d, stage=ckpt["stage"])
    unwrap(state.G).load_state_dict(ckpt["model"]["G"])
    unwrap(state.D).load_state_dict(ckpt["model"]["D"])
    state.opt_G.load_state_dict(ckpt["optimizer"]["G"])
    state.opt_D.load_state_dict(ckpt["optimizer"]["D"])
    for scaler, saved in ((state.scaler_G, ckpt["scaler"]["G"]), (state.scaler_D, ckpt["scaler"]["D"])):
        if saved:  # a disabled scaler (bf16, fp32) saves {}, which an enabled one refuses
            scaler.load_state_dict(saved)
    state.step, state.clips = ckpt["step"], ckpt.get("clips", "")
    return state


def check_loss(window: LossWindow, state: TrainState, since: int, run_dir: Path) -> None:
    """Stop the run, before it checkpoints, when the generator's loss was NaN or inf on any process
    in a step of ``window`` (the steps after ``since``): bad data or a diverged run would otherwise
    go into the checkpoint, and the last good one would no longer be the latest.

    Reads the loss, not the gradients: a float16 scaler skips steps with inf gradients by design.
    One host sync; under DDP every process takes part, so all of them stop together.

    Raises:
        ValueError: one line naming the step.
    """
    total = window.sums.get("total_G")
    if total is None:  # no step since the last log point, which checked its own
        return
    finite = torch.isfinite(total).to(torch.int32)
    if state.dist.world_size > 1:
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    if not finite.item():
        raise ValueError(f"step {state.step}: the generator's loss was NaN or inf in a step after step {since}; "
                         f"stopped with no checkpoint written for it (those in {run_dir} are from before it)")


def sample_image(real: torch.Tensor, fake: torch.Tensor, n: int = 8) -> torch.Tensor:
    """First sequence's frames, real above generated: (3, 2H, nW) in [0, 1] for TensorBoard."""
    top = torch.cat(list(real[0, :n]), dim=-1)  # (3, H, n*W)
    bottom = torch.cat(list(fake[0, :n].float()), dim=-1)
    return ((torch.cat([top, bottom], dim=-2) + 1) / 2).clamp(0, 1)


def train(config: Config, clips: list[ClipRef], run_dir: Path, steps: int | None = None,
          device: str | None = None, on_checkpoint: Callable[[Path], None] | None = None) -> list[dict[str, float]]:
    """Train until global step ``steps`` (default: the end of the schedule), resuming from
    the latest checkpoint in ``run_dir`` if there is one (its config then wins).

    Args:
        device: ``auto`` (None), ``cpu``, ``cuda`` or ``cuda:N``; see :func:`setup_distributed`.
        on_checkpoint: called with each checkpoint written (main process), e.g. to copy it to
            the run folder on object storage, so that a machine lost mid-run loses only the
            steps since.

    Returns:
        One record per log point (every ``log_every`` steps, and the last step):
        each loss term's mean over the steps since the previous record, ``step``,
        ``stage``, ``steps`` (in the window), ``wall_s`` (the window's wall time,
        the GPU's work included), ``data_s`` (of it, waiting for batches),
        ``steps_per_s`` and ``frames_per_s``.

    Raises:
        ValueError: a bad device or precision for this machine, unusable data, or a NaN or inf
            generator loss (see :func:`check_loss`); one line each.
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
    t = config.train
    # The caller chose the clips for its own config's seq_len; a resumed run's may be longer.
    clips = long_enough(clips, t.seq_len, f"run {run_dir}")
    digest = clips_digest(clips)
    if existing and state.clips and state.clips != digest:
        log.warning("resuming %s on other clips than it was trained on (%d now): its batches from step %d on "
                    "differ from those of an uninterrupted run", run_dir, len(clips), state.step)
    state.clips = digest
    configure_backend(d.device, t.deterministic)
    log.info("training on %s", state.runtime.describe())
    end = config.total_steps if steps is None else steps
    losses = Losses(config).to(d.device)
    stream = ShardStream(clips, t.batch_size, t.seq_len, t.seed, start_batch=state.step,
                         rank=d.rank, world_size=d.world_size)
    batches = iter(make_loader(stream, t.num_workers, pin_memory=d.device.type == "cuda"))
    writer = None
    if d.is_main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb"))
    history = []
    window = LossWindow()
    mark, data_s = Mark(state.step, time.perf_counter()), 0.0
    try:
        while state.step < end:
            index = stage_index(t.schedule, state.step)
            if index != state.stage:
                enter_stage(state, index)
            for opt in (state.opt_G, state.opt_D):
                for group in opt.param_groups:
                    group["lr"] = learning_rate(t, state.step)
            t0 = time.perf_counter()
            batch = next_batch(batches)
            data_s += time.perf_counter() - t0
            window.add(train_step(state, losses, batch))
            if state.step % t.log_every == 0 or state.step == end:
                check_loss(window, state, mark.step, run_dir)
                record = window.means()  # waits for the device: the window's time includes its work
                now = Mark(state.step, time.perf_counter())
                progress = measure(mark, now, end, t.batch_size * t.seq_len * d.world_size)
                record.update(step=state.step, stage=index, steps=now.step - mark.step, wall_s=now.time - mark.time,
                              data_s=data_s, steps_per_s=progress.steps_per_s, frames_per_s=progress.frames_per_s)
                history.append(record)
                if d.is_main:
                    report(writer, record, progress, t.schedule[index].name)
                mark, data_s = now, 0.0
            if writer is not None and state.step % t.sample_every == 0:
                G = unwrap(state.G).eval()  # inference statistics, and no update of them
                with torch.no_grad(), state.autocast():  # forward(), not G(): eager, no compiled graph for a sample
                    fake, _ = G.forward(to_model_frames(batch["reference"][:1].to(d.device)),
                                        batch["mfcc"][:1].to(d.device))
                G.train()
                writer.add_image("samples/real_top_generated_bottom",
                                 sample_image(to_model_frames(batch["frames"][:1]), fake.cpu()), state.step)
            if state.step % t.checkpoint_every == 0 or state.step == end:
                check_loss(window, state, mark.step, run_dir)
                if d.is_main:
                    saved = save_checkpoint(state, run_dir)
                    if on_checkpoint is not None:
                        on_checkpoint(saved)
    finally:
        if writer is not None:
            writer.close()
        if dist.is_initialized():
            dist.barrier()
    return history
