"""``genreshift finetune``: train a TraVeLGAN translator from a source folder to a target folder.

As in MelGAN-VC: G rewrites source crops, each given to G as 3 parts that are concatenated
again before D judges them (so chunk borders come out seamless); D (hinge loss) pulls G's
output toward the target; the siamese S embeds crops, and the TraVeL loss keeps the vectors
between crops (S(a_i) - S(a_j)) the same after G, which preserves content; a margin loss
stops S from collapsing; an identity loss keeps target crops unchanged. ``--paired`` adds an
L1 term between translated source and target crops of files that match by relative path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__, registry
from ..checkpoint import Checkpoint
from ..config import MelConfig, TranslatorConfig, from_dict, to_dict
from ..translator import Discriminator, Generator, Siamese
from ..vocoder import GriffinLim
from . import loop, progress, samples
from .config import CriticConfig, FinetuneConfig, TrainConfig, TravelLossWeights, finetune_recipe, new_translator
from .data import Crops, crops_from, paired_crops
from .finetune_losses import content_loss, join_parts, margin_loss, mean_colour, paired_colour, split_parts, travel_loss
from .progress import Progress


@dataclass(frozen=True)
class FinetuneOptions:
    source: Path
    target: Path
    name: str
    init: str = "scratch"  # scratch | a genre | a translator .pt
    out: Path | None = None  # folder for NAME.pt, or a .pt path (default: the user model folder)
    run_dir: Path | None = None  # checkpoints, samples, log (default: <GENRESHIFT_HOME>/runs/NAME)
    paired: bool = False
    device: str = "auto"
    resume: bool = False
    force: bool = False
    quiet: bool = False
    cache_dir: Path | None = None  # default <GENRESHIFT_HOME>/cache/training
    overrides: dict = field(default_factory=dict)  # TranslatorConfig / CriticConfig fields; None = keep
    train: TrainConfig = field(default_factory=TrainConfig)
    hparams: FinetuneConfig | None = None  # None: the recipe's (config.finetune_recipe)
    weights: TravelLossWeights | None = None

    def __post_init__(self) -> None:
        hparams, weights = finetune_recipe(self.paired)
        object.__setattr__(self, "hparams", self.hparams or hparams)
        object.__setattr__(self, "weights", self.weights or weights)


@dataclass
class FinetuneResult:
    model: Path
    run_dir: Path
    step: int  # steps the run took
    val: dict[str, float]  # the held-out figures at the last step
    in_user_models: bool  # so `convert --to NAME` finds it
    # With pairs, the model file holds the step with the lowest held-out val_paired:
    kept_step: int | None = None
    kept: float | None = None  # its val_paired
    start: float | None = None  # val_paired before the first step

    @property
    def ended_worse(self) -> bool:
        """The held-out figure at the last step is worse than before training."""
        return self.start is not None and self.val.get("val_paired", self.start) > self.start


# -- one step -------------------------------------------------------------------------------


def _train_step(
    r: "_Run", a: torch.Tensor | None, b: torch.Tensor | None, pairs: torch.Tensor | None
) -> dict[str, float]:
    """One update of G and S, then of D. Terms whose weight is 0 are not computed, and with
    no adversarial term D is not trained: the supervised ``--paired`` recipe is a plain L1 step."""
    g, s, d, w, parts = r.g, r.s, r.d, r.opts.weights, r.opts.hparams.parts
    losses: dict[str, torch.Tensor] = {}
    fake = None
    if r.unpaired_terms:
        a_parts, b_parts = split_parts(a, parts), split_parts(b, parts)
        out = g(torch.cat([a_parts, b_parts]))  # one pass for translation and identity
        fake_parts, same_parts = out[: len(a_parts)], out[len(a_parts) :]
        fake = join_parts(fake_parts, parts)
        if w.adversarial:
            with loop.no_sync(d):  # D's gradients from the G step are thrown away, not all-reduced
                losses["adv"] = -d(fake).mean()
        if w.travel or w.siamese:
            e_src, e_out = s(torch.cat([a_parts, fake_parts])).chunk(2)
            losses["travel"], losses["siamese"] = travel_loss(e_src, e_out), margin_loss(e_src, w.margin)
        if w.identity:
            losses["identity"] = (same_parts - b_parts).abs().mean()
        if w.content:
            losses["content"] = content_loss(a, fake)
    if pairs is not None:
        src, tgt = pairs.chunk(2, dim=1)  # source and target mels are stacked along the mel axis
        losses["paired"] = (g(src) - tgt).abs().mean()  # whole crops: the windows convert uses
    weight = dict(adv=w.adversarial, travel=w.travel, siamese=w.siamese, identity=w.identity, paired=w.paired,
                  content=w.content)  # fmt: skip
    r.opt_g.zero_grad(set_to_none=True)
    sum(weight[k] * v for k, v in losses.items()).backward()
    clip = r.opts.hparams.clip_grad
    grads = [p for group in r.opt_g.param_groups for p in group["params"] if p.grad is not None]
    grad_norm = torch.nn.utils.clip_grad_norm_(grads, clip if clip > 0 else float("inf"))
    r.opt_g.step()
    if w.adversarial and fake is not None:
        losses["d"] = (F.relu(1 - d(b)).mean() + F.relu(1 + d(fake.detach())).mean()) / 2
        r.opt_d.zero_grad(set_to_none=True)
        losses["d"].backward()
        r.opt_d.step()
    return {**{k: float(v.detach()) for k, v in losses.items()}, "grad_norm": float(grad_norm)}


@torch.no_grad()
def evaluate(g: nn.Module, d: nn.Module, val_a: torch.Tensor, val_b: torch.Tensor,
             val_pairs: torch.Tensor | None = None) -> dict[str, float]:  # fmt: skip
    """Identity distance on held-out target crops, and D's mean score on held-out target
    crops, on translated held-out source crops, and on the untranslated source crops; with
    pairs, the L1 of translated held-out source crops to their targets."""
    figures = {
        "val_identity": float((g(val_b) - val_b).abs().mean()),
        "val_d_target": float(d(val_b).mean()),
        "val_d_translated": float(d(g(val_a)).mean()),
        "val_d_source": float(d(val_a).mean()),
    }
    if val_pairs is not None:
        src, tgt = val_pairs.chunk(2, dim=1)
        figures["val_paired"] = float((g(src) - tgt).abs().mean())
    return figures


# -- setup ----------------------------------------------------------------------------------


def _check_name(opts: FinetuneOptions) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", opts.name) or opts.name.endswith(".pt"):
        raise loop.TrainingError(f"--name '{opts.name}': use letters, digits, '.', '_' or '-' (it becomes NAME.pt)")
    if opts.name in registry.builtin_genres() and not opts.force:
        raise loop.TrainingError(f"--name '{opts.name}' is a built-in genre; choose another name, or pass --force "
                                     "to shadow the built-in model with yours")  # fmt: skip


def _model_path(opts: FinetuneOptions) -> tuple[Path, bool]:
    if opts.out is not None and opts.out.suffix == ".pt":
        loop.writable_dir(opts.out.parent, "output folder")
        return opts.out, False
    folder = opts.out or registry.user_models_dir()
    loop.writable_dir(folder, "output folder")
    return folder / f"{opts.name}.pt", opts.out is None


def _init(spec: str) -> Checkpoint | None:
    """Starting weights: none, a genre's translator, or a translator checkpoint file."""
    from ..errors import ModelError, UnknownGenreError
    from ..pretrained import translator_checkpoint

    if spec == "scratch":
        return None
    try:
        return translator_checkpoint(spec)
    except UnknownGenreError as exc:  # a model that cannot be used: exit 1, as every bad --init
        raise ModelError(str(exc)) from None


def _settings(opts: FinetuneOptions, resumed: Checkpoint | None, init: Checkpoint | None, where: Path):
    """Model sizes: a resumed run's are fixed, --init fixes G's (window length may change)."""
    base = resumed or init
    locked = str(where) if resumed else (f"--init {opts.init}" if init else None)
    cfg = base.config if base else new_translator(opts.paired)
    cfg = loop.with_overrides(cfg, opts.overrides, locked, free=("window_frames",))
    critic = from_dict(CriticConfig, resumed.extra["training"]["critic"]) if resumed else CriticConfig()
    critic = loop.with_overrides(critic, opts.overrides, str(where) if resumed else None)
    part = cfg.window_frames // opts.hparams.parts
    if part < 4:
        raise loop.TrainingError(f"--window-frames {cfg.window_frames} is too short for {opts.hparams.parts} parts")
    return cfg, critic, part * opts.hparams.parts


def _released_vocoder() -> str | None:
    """The vocoder a new translator names: the one the released translators use (the release
    picks it by measured quality), else "fast" once a fast vocoder is released."""
    entries = registry.registry_entries()
    for e in entries:
        if e.kind == "translator" and e.vocoder:
            return e.vocoder
    return "fast" if any(e.model == "fast" and e.kind == "vocoder" for e in entries) else None


def _data(opts: FinetuneOptions, env: loop.Env, mel_cfg: MelConfig, frames: int):
    tc = opts.train
    cache = opts.cache_dir or registry.home_dir() / "cache" / "training"
    say = lambda text: progress.say(env.is_main, opts.quiet, text)  # noqa: E731
    with loop.main_first(env):  # rank 0 fills the cache, the others then read it
        src, tgt = (crops_from([folder], "mel", frames, mel_cfg, tc, tc.seed + k, env.rank, cache, env.is_main, say)
                    for k, folder in enumerate((opts.source, opts.target)))  # fmt: skip
    frame_s = mel_cfg.hop_length / mel_cfg.sample_rate
    return src, tgt, paired_crops(src, tgt, tc, env.rank, frame_s, say) if opts.paired else None


def _frames(clips: list, rows: slice, silence_db: float) -> torch.Tensor:
    """(1, rows, frames) of every non-silent frame of the clips' mels."""
    return torch.cat([torch.from_numpy(np.asarray(c.data[rows], np.float32)[:, np.asarray(c.loudness) > silence_db])
                      for c in clips], dim=1)[None]  # fmt: skip


def _colour_from_data(
    src: Crops, tgt: Crops, pairs: Crops | None, silence_db: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The colour map a new G starts from: the best per-bin affine equaliser of the pairs,
    or without pairs the per-bin offset between the folders' mean levels."""
    if pairs is not None:
        m = pairs.clips[0].data.shape[0] // 2
        return paired_colour(_frames(pairs.clips, slice(0, m), silence_db),
                             _frames(pairs.clips, slice(m, 2 * m), silence_db))  # fmt: skip
    return mean_colour(_frames(src.clips, slice(None), silence_db), _frames(tgt.clips, slice(None), silence_db))


def _write_samples(g: nn.Module, val_a: torch.Tensor, mel_cfg: MelConfig, folder: Path, step: int) -> None:
    """Before/after audio of a few held-out source crops (Griffin-Lim) and their spectrograms."""
    before = torch.cat(list(val_a[:4]), dim=-1)
    with torch.no_grad():
        after = g(before[None].to(next(g.parameters()).device))[0].cpu()
    vocode = GriffinLim(mel=mel_cfg)
    stem = folder / f"step_{step:07d}"
    for label, mel in (("before", before), ("after", after)):
        samples.write_wav(Path(f"{stem}_{label}.wav"), vocode(mel[None])[0], mel_cfg.sample_rate)
    samples.write_bytes(Path(f"{stem}.png"), samples.spectrogram_png([before.numpy(), after.numpy()]))


@dataclass
class _Run:
    """Everything one training session holds."""

    opts: FinetuneOptions
    env: loop.Env
    run_dir: Path
    model_path: Path
    in_user_models: bool
    cfg: TranslatorConfig
    critic: CriticConfig
    mel_cfg: MelConfig
    src: Crops
    tgt: Crops
    pairs: Crops | None
    g: nn.Module
    s: nn.Module
    d: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    tally: loop.Tally
    vocoder: str | None

    @property
    def unpaired_terms(self) -> bool:
        """Whether any loss term needs unpaired source and target crops."""
        w = self.opts.weights
        return bool(w.adversarial or w.travel or w.siamese or w.identity or w.content) or self.pairs is None

    @property
    def samplers(self) -> dict[str, torch.Generator]:
        return {"source": self.src.rng, "target": self.tgt.rng, **({"pairs": self.pairs.rng} if self.pairs else {})}


def _setup(opts: FinetuneOptions, env: loop.Env) -> _Run:
    run_dir = loop.writable_dir(opts.run_dir or registry.home_dir() / "runs" / opts.name, "run folder")  # as in run()
    model_path, in_user_models = _model_path(opts)
    loop.check_fresh(run_dir, opts.resume, opts.force)
    if model_path.exists() and not (opts.resume or opts.force):
        raise loop.TrainingError(f"{model_path} exists; pass --force to replace it or --resume to continue its run")
    resumed = loop.load_state(run_dir / "last.pt", "translator") if opts.resume else None
    init = None if resumed else _init(opts.init)
    cfg, critic, frames = _settings(opts, resumed, init, run_dir / "last.pt")
    mel_cfg = (resumed or init).mel if (resumed or init) else MelConfig()
    src, tgt, pairs = _data(opts, env, mel_cfg, frames)
    torch.manual_seed(opts.train.seed)  # the same initial weights on every rank (DDP also broadcasts them)
    g, s = Generator(cfg), Siamese(cfg, critic.siamese_channels, critic.siamese_dim)
    d = Discriminator(cfg, critic.disc_channels)
    if resumed or init:  # released weights may be fp16
        g.load_state_dict({k: v.float() for k, v in (resumed or init).state_dict.items()})
    elif g.colour is not None:
        g.colour.fit(*_colour_from_data(src, tgt, pairs, opts.train.silence_db))
    g, s, d = (loop.wrap(m, env) for m in (g, s, d))  # on the device before optimizer state is loaded
    hp = opts.hparams
    opt_g = torch.optim.Adam([*g.parameters(), *s.parameters()], hp.lr, betas=(hp.beta1, hp.beta2))
    opt_d = torch.optim.Adam(d.parameters(), hp.lr_d, betas=(hp.beta1, hp.beta2))
    r = _Run(opts, env, run_dir, model_path, in_user_models, cfg, critic, mel_cfg, src, tgt, pairs, g, s, d,
             opt_g, opt_d, loop.Tally(), _released_vocoder())  # fmt: skip
    if resumed:
        parts = {"siamese": s, "discriminator": d, "opt_g": opt_g, "opt_d": opt_d}
        r.tally = loop.unpack(resumed.extra["training"], parts, r.samplers, env, run_dir / "last.pt")
        progress.say(env.is_main, opts.quiet, f"resuming {run_dir / 'last.pt'} at step {r.tally.step}")
    return r


def _snapshot(r: _Run, with_state: bool = True) -> Checkpoint:
    """G as a translator checkpoint; ``with_state`` adds all it takes to resume."""
    o = r.opts
    meta = {"name": o.name, **r.tally.meta(), "source": str(o.source), "target": str(o.target), "init": o.init,
            "paired": r.pairs is not None, "genreshift": __version__}  # fmt: skip
    parts = {"siamese": r.s, "discriminator": r.d, "opt_g": r.opt_g, "opt_d": r.opt_d}
    state = loop.pack(r.tally, parts, r.samplers)
    state.update(critic=to_dict(r.critic), hparams=to_dict(o.hparams))
    return Checkpoint("translator", "travelgan", r.cfg, r.mel_cfg, loop.state_dict(r.g), genres=[o.name],
                      vocoder=r.vocoder, meta=meta, extra={"training": state} if with_state else {})  # fmt: skip


def _keeps_best(r: _Run) -> bool:
    """With pairs the held-out figure is a distance to the truth, comparable across steps, so
    the model file is the best step's. Without, it is D's opinion, and D changes as it
    trains: the model file is the last step's (best.pt still holds the best by D)."""
    return r.pairs is not None


def _save_last(r: _Run) -> None:
    if r.tally.saved != r.tally.step:
        loop.save(_snapshot(r), r.run_dir / "last.pt", r.env)
        if not _keeps_best(r):
            loop.save(_snapshot(r, with_state=False), r.model_path, r.env)
        r.tally.saved = r.tally.step


def _evaluate(r: _Run, progress: Progress) -> None:
    """Rank 0: validation figures, best.pt, and before/after samples."""
    g, d, val_a = loop.unwrap(r.g), loop.unwrap(r.d), r.src.val()
    val_pairs = r.pairs.val().to(r.env.device) if r.pairs else None
    r.tally.val = evaluate(g, d, val_a.to(r.env.device), r.tgt.val().to(r.env.device), val_pairs)
    progress.record({"step": r.tally.step, **r.tally.val})
    if r.pairs is not None:  # with pairs the figure that matters is the distance to the truth
        score = r.tally.val["val_paired"]
    else:  # how far translations are from passing D
        score = r.tally.val["val_d_target"] - r.tally.val["val_d_translated"]
    if r.tally.first is None:
        r.tally.first = score
    if score < r.tally.best:
        r.tally.best, r.tally.best_step = score, r.tally.step
        loop.save(_snapshot(r), r.run_dir / "best.pt", r.env)
        if _keeps_best(r):
            loop.save(_snapshot(r, with_state=False), r.model_path, r.env)
    _write_samples(g, val_a, r.mel_cfg, loop.writable_dir(r.run_dir / "samples", "samples folder"), r.tally.step)


def run(opts: FinetuneOptions) -> FinetuneResult:
    _check_name(opts)
    tc = opts.train
    run_dir = opts.run_dir or registry.home_dir() / "runs" / opts.name
    with loop.session(opts.device) as env, loop.cleared_on_failure(run_dir):
        r = _setup(opts, env)

        def step() -> dict[str, float]:
            a = b = None
            if r.unpaired_terms:
                a, b = r.src.batch(tc.batch_size).to(env.device), r.tgt.batch(tc.batch_size).to(env.device)
            pairs = r.pairs.batch(tc.batch_size).to(env.device) if r.pairs else None
            return _train_step(r, a, b, pairs)

        # With pairs, the figure before the first step is where the run starts: the colour map
        # fitted in closed form may already be the best this data allows.
        loop.train_loop("finetune", tc, env, r.run_dir, opts.quiet, r.tally, step,
                        lambda progress: _evaluate(r, progress), lambda: _save_last(r),
                        evaluate_first=_keeps_best(r))  # fmt: skip
        result = FinetuneResult(r.model_path, r.run_dir, r.tally.step, r.tally.val, r.in_user_models)
        if _keeps_best(r) and env.is_main:
            result.kept_step, result.kept, result.start = r.tally.best_step, r.tally.best, r.tally.first
        return result
