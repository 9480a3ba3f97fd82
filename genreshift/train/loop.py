"""What both trainers share: the torchrun session and DDP wrapping, the run folder,
checkpoints that resume exactly, and the loop itself (``train_loop``: step, evaluate, save,
Ctrl-C).

``finetune.py`` and ``vocoder.py`` give that one loop their own training step, evaluation
and checkpoint, each a function that reads in one sitting (nanoGPT style). The data side
(mel cache, crops) lives in ``data.py``, the progress bar and log in ``progress.py``, the
samples written at evaluations in ``samples.py``.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .. import checkpoint, distrib, interrupts
from ..checkpoint import Checkpoint
from ..device import resolve_device
from ..errors import CheckpointError, Interrupted, TrainingError, short_reason
from .progress import Progress

# -- torchrun / DistributedDataParallel ----------------------------------------------------


@dataclass(frozen=True)
class Env:
    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


@contextlib.contextmanager
def session(device_spec: str) -> Iterator[Env]:
    """Join the process group when started by torchrun (gloo on CPU, nccl on CUDA)."""
    device = resolve_device(device_spec)
    with interrupts.term_as_interrupt():
        if distrib.world_size() <= 1:
            yield Env(device)
            return
        if device.type not in {"cpu", "cuda"}:
            raise TrainingError(f"torchrun runs need --device cpu or cuda, not {device.type}")
        device = distrib.local_device(device)
        with distrib.process_group("nccl" if device.type == "cuda" else "gloo"):
            yield Env(device, distrib.rank(), distrib.world_size())


def wrap(module: nn.Module, env: Env) -> nn.Module:
    module = module.to(env.device)
    if not env.distributed:
        return module
    ids = [env.device.index] if env.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def no_sync(module: nn.Module):
    """Forward passes whose gradients must not be all-reduced (D inside the G step)."""
    return module.no_sync() if isinstance(module, nn.parallel.DistributedDataParallel) else contextlib.nullcontext()


@contextlib.contextmanager
def main_first(env: Env) -> Iterator[None]:
    """Rank 0 runs the block first (and writes caches); the others then find them ready."""
    if env.distributed and not env.is_main:
        dist.barrier()
    yield
    if env.distributed and env.is_main:
        dist.barrier()


# -- folders, settings, checkpoints ---------------------------------------------------------


def writable_dir(path: Path, what: str) -> Path:
    """Create ``path`` and prove it is writable, or fail with one clear line.

    Only rank 0 writes: under torchrun the other ranks leave the folder to it (if rank 0
    fails here, torchrun stops the whole job)."""
    if not distrib.is_main():
        return path
    if path.exists() and not path.is_dir():
        raise TrainingError(f"{path}: {what} is a file, not a folder; choose another path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".genreshift-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise TrainingError(f"{path}: {what} is not writable ({exc.strerror or exc})") from None
    return path


@contextlib.contextmanager
def cleared_on_failure(folder: Path) -> Iterator[None]:
    """A run folder this run created is removed again if the run fails before writing
    anything into it (bad data, bad options): no empty folders left behind."""
    existed = os.path.lexists(folder)
    try:
        yield
    except BaseException:
        if not existed and distrib.is_main():
            for dirpath, _dirs, _files in os.walk(folder, topdown=False):
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)  # fails, and keeps the folder, if anything is in it
        raise


def with_overrides(cfg: Any, overrides: dict[str, Any], locked_by: str | None = None, free: tuple[str, ...] = ()):
    """``cfg`` with the given fields replaced; when ``locked_by`` (a checkpoint we continue
    from) fixes the shapes, asking for a different value is an error, not a silent change."""
    known = {f.name for f in fields(cfg)}
    mine = {k: v for k, v in overrides.items() if k in known and v is not None}
    clash = [f"{k}={getattr(cfg, k)} (asked {v})" for k, v in mine.items() if v != getattr(cfg, k) and k not in free]
    if locked_by and clash:
        raise TrainingError(f"{locked_by} has different model settings: {', '.join(clash)}; "
                            "drop those options to keep its settings, or start a new run elsewhere")  # fmt: skip
    return replace(cfg, **mine)


def load_state(path: Path, kind: str) -> Checkpoint:
    """A training checkpoint to resume from, with its training state checked."""
    if not path.is_file():
        raise TrainingError(f"{path}: no checkpoint to resume from; run without --resume to start")
    try:
        ckpt = checkpoint.load(path)
    except CheckpointError as exc:
        raise TrainingError(f"{exc}; delete it or use --force to start over") from None
    if ckpt.kind != kind or not isinstance(ckpt.extra.get("training"), dict):
        raise TrainingError(f"{path}: not a {kind} training checkpoint; delete it or use --force to start over")
    return ckpt


def check_fresh(run_dir: Path, resume: bool, force: bool) -> None:
    """Never overwrite a run by accident: an existing last.pt needs --resume or --force."""
    last = run_dir / "last.pt"
    if last.exists() and not (resume or force):
        raise TrainingError(f"{run_dir} already holds a training run ({last.name}); "
                            "pass --resume to continue it or --force to start over")  # fmt: skip


def save(ckpt: Checkpoint, path: Path, env: Env) -> None:
    if env.is_main:
        checkpoint.save(ckpt, path)


def state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in unwrap(module).state_dict().items()}


def pack(tally: "Tally", parts: dict[str, nn.Module | torch.optim.Optimizer],
         samplers: dict[str, torch.Generator]) -> dict[str, Any]:  # fmt: skip
    """Everything besides G that resuming needs (D, S, optimizers, step, random streams), as
    plain data for a checkpoint's "training" entry, one key per part."""
    rng = {"torch": torch.get_rng_state(), **{f"sampler/{k}": g.get_state() for k, g in samplers.items()}}
    states = {k: state_dict(p) if isinstance(p, nn.Module) else p.state_dict() for k, p in parts.items()}
    return {**tally.state(), **states, "rng": rng}


def unpack(state: dict[str, Any], parts: dict[str, nn.Module | torch.optim.Optimizer],
           samplers: dict[str, torch.Generator], env: Env, source: Path | str = "last.pt") -> "Tally":  # fmt: skip
    """Inverse of ``pack``. Only rank 0 gets its random streams back; other ranks keep their own
    seeds (a resumed DDP run draws different but equally random crops there, all DDP needs)."""
    try:
        for k, p in parts.items():
            (unwrap(p) if isinstance(p, nn.Module) else p).load_state_dict(state[k])
        if env.is_main:
            torch.set_rng_state(state["rng"]["torch"])
            for k, g in samplers.items():
                if f"sampler/{k}" in state["rng"]:  # a sampler new in this session starts from its seed
                    g.set_state(state["rng"][f"sampler/{k}"])
        first = state.get("first")  # runs saved before 0.3 have no start figure or best step
        return Tally(step=int(state["step"]), best=float(state["best"]), wall=float(state["wall_seconds"]),
                     best_step=int(state.get("best_step", -1)), first=None if first is None else float(first))  # fmt: skip
    except Exception as exc:  # a damaged or foreign training state: one line, not a traceback
        raise TrainingError(f"{source}: not a usable genreshift checkpoint: training state "
                            f"({short_reason(exc)}); delete it or use --force to start over") from None  # fmt: skip


@dataclass
class Tally:
    """Where a run is: step, best validation figure, time spent, latest losses and figures."""

    step: int = 0
    best: float = float("inf")
    best_step: int = -1  # the step whose weights scored ``best``
    first: float | None = None  # the held-out figure of the first evaluation: where the run started
    wall: float = 0.0  # seconds spent in earlier sessions of this run
    losses: dict[str, float] = field(default_factory=dict)
    val: dict[str, float] = field(default_factory=dict)
    saved: int = -1  # step of the last save, so the end of a run does not save twice
    started: float = field(default_factory=time.perf_counter)

    def seconds(self) -> float:
        return self.wall + time.perf_counter() - self.started

    def state(self) -> dict[str, Any]:
        return {"step": self.step, "best": self.best, "wall_seconds": self.seconds(), "best_step": self.best_step,
                "first": self.first}  # fmt: skip

    def meta(self) -> dict[str, Any]:
        return {"steps": self.step, "wall_seconds": self.seconds(), "final_losses": self.losses, "val": self.val}


def check_finite(losses: dict[str, float], step: int) -> None:
    bad = [k for k, v in losses.items() if not np.isfinite(v)]
    if bad:
        raise TrainingError(f"loss {', '.join(bad)} is not finite at step {step}; lower the learning rate "
                            "and continue from the last checkpoint with --resume")  # fmt: skip


# -- progress and logs ----------------------------------------------------------------------


def train_loop(title: str, tc: Any, env: "Env", run_dir: Path, quiet: bool, tally: "Tally",
               step: Callable[[], dict[str, float]], evaluate: Callable[["Progress"], None],
               save_last: Callable[[], None], evaluate_first: bool = False) -> None:  # fmt: skip
    """The loop both trainers share: step until ``tc.steps`` (or ``tc.max_minutes`` of wall
    time in this session), evaluate on rank 0 every ``tc.eval_every`` (and, with
    ``evaluate_first``, before a new run's first step), save every ``tc.save_every``, and
    save before leaving on Ctrl-C (after the step under way: see
    ``interrupts.stop_between_steps``)."""
    progress = Progress(title, tc.steps, tally.step, env.is_main, run_dir, quiet, tc.log_every)
    if evaluate_first and env.is_main and tally.step == 0:
        evaluate(progress)
    out_of_time = deadline(tc.max_minutes, env)
    evaluated = -1
    first = tally.step  # what last.pt holds when this session has saved nothing yet
    stop = interrupts.StopFlag()
    try:
        with interrupts.stop_between_steps(defer=not env.distributed) as stop:
            while tally.step < tc.steps and not stop and not out_of_time():
                tally.losses = step()
                tally.step += 1
                check_finite(tally.losses, tally.step)
                progress.step(tally.step, tally.losses)
                if env.is_main and (tally.step % tc.eval_every == 0 or tally.step == tc.steps):
                    evaluate(progress)
                    evaluated = tally.step
                if tally.step % tc.save_every == 0:
                    save_last()
        if stop:
            save_last()
            raise Interrupted(tally.step, run_dir / "last.pt")
    except KeyboardInterrupt:
        if stop:  # a second signal cut a step short: what it left half-done is not saved
            raise Interrupted(tally.saved if tally.saved >= 0 else first, run_dir / "last.pt", forced=True) from None
        save_last()  # torchrun, where every rank stops at once: save what there is
        raise Interrupted(tally.step, run_dir / "last.pt") from None
    finally:
        progress.close()
    if env.is_main and (not tally.val or evaluated != tally.step):  # stopped by the clock, or resumed at the end
        evaluate(progress)
    save_last()


def deadline(minutes: float | None, env: Env) -> Callable[[], bool]:
    """A check that says when ``minutes`` of wall time have passed since now. Under torchrun
    rank 0's clock decides for all, so every rank stops after the same step."""
    if minutes is None:
        return lambda: False
    end = time.monotonic() + 60 * minutes

    def out_of_time() -> bool:
        late = time.monotonic() >= end
        if not env.distributed:
            return late
        flag = torch.tensor([float(late and env.is_main)], device=env.device)
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    return out_of_time
