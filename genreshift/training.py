"""What every training run needs around its loop: torchrun/DDP, the run folder, checkpoints
that resume exactly, progress and logs, and image/audio samples at evaluations.

The loops themselves live in ``finetune.py`` and ``vocoder_training.py`` (one readable loop
each, nanoGPT style); the data side (mel cache, crops) lives in ``training_data.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from . import checkpoint
from .atomic import replacing
from .checkpoint import Checkpoint, CheckpointError
from .device import resolve_device


class TrainingError(Exception):
    """Bad input or state; the message is one line that says what to do."""


class Interrupted(Exception):
    """Ctrl-C: a checkpoint was saved; the message says where and how to continue."""

    def __init__(self, step: int, saved: Path):
        super().__init__(f"interrupted at step {step}; saved {saved}; continue with --resume")


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
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_spec)
    with _term_as_interrupt():
        if world <= 1:
            yield Env(device)
            return
        with _process_group(device, world) as env:
            yield env


@contextlib.contextmanager
def _process_group(device: torch.device, world: int) -> Iterator[Env]:
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise TrainingError(f"torchrun runs need --device cpu or cuda, not {device.type}")
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield Env(device, rank, world)
    finally:
        dist.destroy_process_group()


@contextlib.contextmanager
def _term_as_interrupt() -> Iterator[None]:
    """SIGTERM (a killed background job, torchrun stopping its workers) saves like Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    if os.environ.get("RANK", "0") != "0":
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
           samplers: dict[str, torch.Generator], env: Env) -> "Tally":  # fmt: skip
    """Inverse of ``pack``. Only rank 0 gets its random streams back; other ranks keep their own
    seeds (a resumed DDP run draws different but equally random crops there, all DDP needs)."""
    for k, p in parts.items():
        (unwrap(p) if isinstance(p, nn.Module) else p).load_state_dict(state[k])
    if env.is_main:
        torch.set_rng_state(state["rng"]["torch"])
        for k, g in samplers.items():
            if f"sampler/{k}" in state["rng"]:  # a sampler new in this session starts from its seed
                g.set_state(state["rng"][f"sampler/{k}"])
    return Tally(step=state["step"], best=state["best"], wall=state["wall_seconds"])


@dataclass
class Tally:
    """Where a run is: step, best validation figure, time spent, latest losses and figures."""

    step: int = 0
    best: float = float("inf")
    wall: float = 0.0  # seconds spent in earlier sessions of this run
    losses: dict[str, float] = field(default_factory=dict)
    val: dict[str, float] = field(default_factory=dict)
    saved: int = -1  # step of the last save, so the end of a run does not save twice
    started: float = field(default_factory=time.perf_counter)

    def seconds(self) -> float:
        return self.wall + time.perf_counter() - self.started

    def state(self) -> dict[str, Any]:
        return {"step": self.step, "best": self.best, "wall_seconds": self.seconds()}

    def meta(self) -> dict[str, Any]:
        return {"steps": self.step, "wall_seconds": self.seconds(), "final_losses": self.losses, "val": self.val}


def check_finite(losses: dict[str, float], step: int) -> None:
    bad = [k for k, v in losses.items() if not np.isfinite(v)]
    if bad:
        raise TrainingError(f"loss {', '.join(bad)} is not finite at step {step}; lower the learning rate "
                            "and continue from the last checkpoint with --resume")  # fmt: skip


# -- progress and logs ----------------------------------------------------------------------


def _fmt(values: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in values.items())


def train_loop(title: str, tc: Any, env: "Env", run_dir: Path, quiet: bool, tally: "Tally",
               step: Callable[[], dict[str, float]], evaluate: Callable[["Progress"], None],
               save_last: Callable[[], None]) -> None:  # fmt: skip
    """The loop both trainers share: step until ``tc.steps``, evaluate on rank 0 every
    ``tc.eval_every``, save every ``tc.save_every``, and save before leaving on Ctrl-C."""
    progress = Progress(title, tc.steps, tally.step, env, run_dir, quiet, tc.log_every)
    try:
        while tally.step < tc.steps:
            tally.losses = step()
            tally.step += 1
            check_finite(tally.losses, tally.step)
            progress.step(tally.step, tally.losses)
            if env.is_main and (tally.step % tc.eval_every == 0 or tally.step == tc.steps):
                evaluate(progress)
            if tally.step % tc.save_every == 0:
                save_last()
    except KeyboardInterrupt:
        save_last()
        raise Interrupted(tally.step, run_dir / "last.pt") from None
    finally:
        progress.close()
    if env.is_main and not tally.val:  # resumed at the last step: still report figures
        evaluate(progress)
    save_last()


class Progress:
    """A rich bar with the latest losses on a terminal, plain lines otherwise (a background run
    logging to a file); every line also goes to ``log.jsonl``. Only rank 0 shows anything."""

    def __init__(self, title: str, total: int, start: int, env: Env, run_dir: Path, quiet: bool, log_every: int):
        """``start`` > 0 continues a run (and its log); 0 starts the log afresh."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

        from .display import stderr

        self.active = env.is_main
        self.quiet = quiet or not env.is_main
        self.log_every = max(1, log_every)
        self.log_path = run_dir / "log.jsonl"
        self.console = stderr
        self.started, self.start_step = time.perf_counter(), start
        self.bar = None
        if self.active and start == 0:
            self.log_path.unlink(missing_ok=True)
        if not self.quiet and stderr.is_terminal:
            columns = [TextColumn(f"[bold]{title}"), BarColumn(), MofNCompleteColumn()]
            self.bar = Bar(*columns, TextColumn("{task.fields[losses]}"), TimeRemainingColumn(), console=stderr)
            self.task = self.bar.add_task(title, total=total, completed=start, losses="")
            self.bar.start()

    def step(self, step: int, losses: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, losses=_fmt(losses))
        if step % self.log_every == 0:
            rate = (step - self.start_step) / max(time.perf_counter() - self.started, 1e-9)
            self.record({"step": step, **losses, "steps_per_s": rate}, show=self.bar is None)

    def record(self, entry: dict[str, Any], show: bool = True) -> None:
        if not self.active:
            return
        with open(self.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")
        if show and not self.quiet:
            text = _fmt({k: v for k, v in entry.items() if k != "step"})
            self.console.print(f"step {entry['step']}: {text}", markup=False, highlight=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def say(env: Env, quiet: bool, text: str) -> None:
    """One line on stderr from rank 0 (before a Progress exists)."""
    if env.is_main and not quiet:
        print(text, file=sys.stderr, flush=True)


# -- samples --------------------------------------------------------------------------------

# A dark-to-bright palette (roughly magma), so quiet bins are dark and loud ones bright.
_PALETTE = np.array([[0, 0, 4], [81, 18, 124], [183, 55, 121], [252, 137, 97], [252, 253, 191]], dtype=np.float64)


def _colour(x: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> RGB bytes by linear interpolation between palette anchors."""
    pos = np.clip(x, 0, 1) * (len(_PALETTE) - 1)
    lo = np.minimum(pos.astype(int), len(_PALETTE) - 2)
    frac = (pos - lo)[..., None]
    return (_PALETTE[lo] * (1 - frac) + _PALETTE[lo + 1] * frac).astype(np.uint8)


def spectrogram_png(mels: list[np.ndarray], lo: float = -5.0, hi: float = 1.5) -> bytes:
    """PNG bytes of log-mels (n_mels, T) stacked top to bottom, low bins at the bottom.

    Written with zlib and struct only, so training needs no plotting library.
    """
    gap = np.full((2, mels[0].shape[-1], 3), 255, np.uint8)
    rows = []
    for m in mels:
        rows += [_colour((np.asarray(m, np.float64)[::-1] - lo) / (hi - lo)), gap]
    img = np.concatenate(rows[:-1])
    raw = b"".join(b"\x00" + row.tobytes() for row in img)  # filter type 0 on every row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", img.shape[1], img.shape[0], 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def write_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_wav(path: Path, wave: torch.Tensor, rate: int) -> None:
    from . import audio

    peak = float(wave.abs().max()) if wave.numel() else 0.0
    wave = wave / peak * 0.9 if peak > 1.0 else wave  # a sample to listen to: never clip
    audio.write_atomic(path, wave.detach().reshape(1, -1).float().cpu(), rate, "WAV", None)
