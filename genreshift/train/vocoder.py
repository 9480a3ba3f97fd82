"""``genreshift train-vocoder``: train the fast (Vocos-style) or the MelGAN vocoder on music.

The generator learns from reconstruction losses alone for ``gan_start`` steps (L1 between
log-mels of output and input, and a multi-resolution STFT loss), then a multi-scale and/or
multi-period discriminator joins in (LSGAN or hinge) with feature matching, as in HiFi-GAN.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..checkpoint import Checkpoint
from ..config import FastVocoderConfig, MelConfig, MelGANConfig, to_dict
from ..mel import log_mel
from ..vocoder import VOCODERS
from . import loop, progress, samples
from .config import TrainConfig, VocoderLossWeights, VocoderTrainConfig
from .data import Crops, crops_from
from .discriminators import Discriminators, d_loss, feature_loss, g_loss, halves
from .phase_losses import advance_loss, consistency_loss, offset_loss, output_phase_losses, phase_losses
from .progress import Progress

ARCHS = {arch: (cls.config_class, cls) for arch, cls in VOCODERS.items() if cls.has_weights}
# A new fast vocoder (not --init or --resume) gets the v2 settings unless told otherwise.
NEW_FAST = {"magnitude_prior": True, "refine_iters": 8, "mel_iters": 4}
# The phase losses' log names -> their VocoderLossWeights fields.
PHASE_WEIGHTS = {"ip": "phase_ip", "gd": "phase_gd", "iaf": "phase_iaf", "consistency": "consistency",
                 "iaf_out": "output_phase", "gd_out": "output_phase"}  # fmt: skip
STFT_RESOLUTIONS = ((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))  # (n_fft, hop, win)
LOW_BAND_HZ = 4000.0  # the top of low_band_loss's bands (VocoderLossWeights.low_band)


@dataclass(frozen=True)
class VocoderTrainOptions:
    audio: tuple[Path, ...]
    arch: str  # fast | melgan
    name: str
    out: Path | None = None  # run folder (default runs/NAME)
    export: Path | None = None  # inference checkpoint (default <out>/NAME.pt)
    device: str = "auto"
    resume: bool = False
    force: bool = False
    quiet: bool = False
    init: Path | None = None  # start from this vocoder checkpoint's weights (e.g. a released one)
    cache_dir: Path | None = None  # default <GENRESHIFT_HOME>/cache/training
    overrides: dict = field(default_factory=dict)  # model sizes and disc/disc_channels; None = keep
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=100_000, eval_every=1000, save_every=1000))
    hparams: VocoderTrainConfig = field(default_factory=VocoderTrainConfig)
    weights: VocoderLossWeights = field(default_factory=VocoderLossWeights)


@dataclass
class VocoderResult:
    export: Path
    run_dir: Path
    step: int
    val: dict[str, float]


def spectral_distance(predicted: torch.Tensor, target: torch.Tensor, floor: float) -> torch.Tensor:
    """Spectral convergence + L1 of log magnitudes, both magnitudes clamped at ``floor``."""
    predicted, target = predicted.clamp(min=floor), target.clamp(min=floor)
    sc = torch.linalg.vector_norm(target - predicted) / torch.linalg.vector_norm(target)
    return sc + F.l1_loss(predicted.log(), target.log())


Magnitudes = list[tuple[int, torch.Tensor, torch.Tensor]]  # (n_fft, |STFT(output)|, |STFT(target)|)


def stft_magnitudes(y_hat: torch.Tensor, y: torch.Tensor) -> Magnitudes:
    """Both signals' STFT magnitudes at each of STFT_RESOLUTIONS: a training step computes
    them once for stft_loss and low_band_loss."""
    out = []
    for n_fft, hop, win in STFT_RESOLUTIONS:
        window = torch.hann_window(win, device=y.device)
        a, b = (torch.stft(x, n_fft, hop, win, window, return_complex=True).abs() for x in (y_hat, y))
        out.append((n_fft, a, b))
    return out


def stft_loss(y_hat: torch.Tensor, y: torch.Tensor, mags: Magnitudes | None = None) -> torch.Tensor:
    """Mean over resolutions of spectral convergence + L1 of log magnitudes (Parallel WaveGAN)."""
    mags = mags or stft_magnitudes(y_hat, y)
    return sum(spectral_distance(a, b, floor=1e-7) for _, a, b in mags) / len(mags)


def low_band_loss(y_hat: torch.Tensor, y: torch.Tensor, sample_rate: int, top_hz: float = LOW_BAND_HZ,
                  mags: Magnitudes | None = None) -> torch.Tensor:  # fmt: skip
    """Mean over resolutions of the L1 of log magnitudes in the STFT bins below ``top_hz``
    (what benchmarks/quality.py reports as the 0-4 kHz bands of its distance)."""
    total = y.new_zeros(())
    mags = mags or stft_magnitudes(y_hat, y)
    for n_fft, a, b in mags:
        bins = int(top_hz * n_fft / sample_rate) + 1
        total = total + F.l1_loss(a[..., :bins, :].clamp(min=1e-5).log(), b[..., :bins, :].clamp(min=1e-5).log())
    return total / len(mags)


def magnitude_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Spectral convergence + L1 of log magnitudes, on the fast vocoder's own STFT frames.

    The waveform losses alone let the predicted magnitude drift to whatever the overlap-add
    turns into the right sound; this keeps it the input's magnitude, which is what
    Griffin-Lim refinement at inference needs.
    """
    return spectral_distance(predicted, target, floor=1e-5)


def _check(opts: VocoderTrainOptions) -> None:
    if opts.arch not in ARCHS:
        raise loop.TrainingError(f"unknown --arch '{opts.arch}' (use fast or melgan)")
    cls = ARCHS[opts.arch][0]
    given = {k for k, v in opts.overrides.items() if v is not None}
    other = given - set(cls.__dataclass_fields__) - {"disc", "disc_channels"}
    if other:
        raise loop.TrainingError(f"{', '.join(sorted(other))} do(es) not apply to --arch {opts.arch}")
    w = opts.weights
    if opts.arch != "fast" and (w.phase_ip or w.phase_gd or w.phase_iaf or w.consistency or w.output_phase):
        raise loop.TrainingError("the phase and consistency losses apply to --arch fast only")
    if opts.hparams.train_refinement and (opts.arch != "fast" or w.consistency):
        raise loop.TrainingError("--train-refinement applies to --arch fast, without --consistency-weight")
    if opts.hparams.segment_frames * MelConfig().hop_length <= STFT_RESOLUTIONS[-1][0]:
        raise loop.TrainingError("--segment-frames must be at least 9 (the STFT loss needs 2048+ samples)")


def _init(opts: VocoderTrainOptions) -> Checkpoint:
    """--init: the generator weights of a vocoder checkpoint (a release file has no optimizer
    state, so training continues from its weights with fresh optimizers and discriminators)."""
    from .. import checkpoint

    try:
        ckpt = checkpoint.load(opts.init)
    except checkpoint.CheckpointError as exc:
        raise loop.TrainingError(str(exc)) from None
    if ckpt.kind != "vocoder":
        raise loop.TrainingError(f"{opts.init}: is a {ckpt.kind} checkpoint; --init needs a vocoder")
    return ckpt


def _settings(opts: VocoderTrainOptions, resumed: Checkpoint | None, where: Path | None):
    """Model and discriminator settings: the checkpoint's when resuming or starting from
    --init (changes refused)."""
    locked = str(where) if resumed else None
    if resumed and resumed.arch != opts.arch:
        raise loop.TrainingError(f"{where} is a {resumed.arch} vocoder, not --arch {opts.arch}")
    overrides = dict(opts.overrides)
    if opts.arch == "fast" and not resumed:
        overrides.update({k: v for k, v in NEW_FAST.items() if overrides.get(k) is None})
    # The Griffin-Lim iterations change inference only, so they may change on --init and --resume.
    base = resumed.config if resumed else ARCHS[opts.arch][0]()
    # An --init net may also switch to integrated phase: its magnitude head carries over (_load).
    free = ("refine_iters", "mel_iters") + (("phase",) if opts.arch == "fast" and not opts.resume else ())
    cfg = loop.with_overrides(base, overrides, locked, free=free)
    hp = opts.hparams
    if resumed and "training" in resumed.extra:
        saved = resumed.extra["training"]["hparams"]
        hp = replace(hp, disc=saved["disc"], disc_channels=saved["disc_channels"])
    # Discriminators come back only on --resume; after --init they start fresh, so any size goes.
    disc_locked = locked if resumed and "training" in resumed.extra else None
    hp = loop.with_overrides(hp, {k: opts.overrides.get(k) for k in ("disc", "disc_channels")}, disc_locked)
    if hp.disc not in {"msd", "mpd", "msd+mpd"} or hp.disc_channels % 4 or hp.gan_loss not in {"lsgan", "hinge"}:
        raise loop.TrainingError(
            "--disc is msd, mpd or msd+mpd; --disc-channels a multiple of 4; --gan-loss lsgan or hinge"
        )
    return cfg, hp


@dataclass
class _Run:
    """Everything one training session holds."""

    opts: VocoderTrainOptions
    env: loop.Env
    run_dir: Path
    export: Path
    cfg: FastVocoderConfig | MelGANConfig
    hp: VocoderTrainConfig
    mel_cfg: MelConfig
    crops: Crops
    g: nn.Module
    d: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    tally: loop.Tally
    init_steps: int  # steps the --init weights had already been trained for (0 from scratch)


def _setup(opts: VocoderTrainOptions, env: loop.Env) -> _Run:
    run_dir = loop.writable_dir(opts.out or Path("runs") / opts.name, "run folder")
    export = opts.export or run_dir / f"{opts.name}.pt"
    loop.writable_dir(export.parent, "export folder")
    loop.check_fresh(run_dir, opts.resume, opts.force)
    resumed = loop.load_state(run_dir / "last.pt", "vocoder") if opts.resume else None
    init = _init(opts) if opts.init and not resumed else None
    cfg, hp = _settings(opts, resumed or init, run_dir / "last.pt" if resumed else opts.init)
    mel_cfg = (resumed or init).mel if (resumed or init) else MelConfig()
    crops = _crops(opts, env, mel_cfg, hp)
    torch.manual_seed(opts.train.seed)  # the same initial weights on every rank (DDP also broadcasts them)
    g, d = ARCHS[opts.arch][1](cfg, mel_cfg), Discriminators(hp.disc, hp.disc_channels)
    if resumed or init:
        _load(g, (resumed or init).state_dict)
    g, d = loop.wrap(g, env), loop.wrap(d, env)  # on the device before optimizer state is loaded
    opt_g = torch.optim.AdamW(g.parameters(), hp.lr, betas=(hp.beta1, hp.beta2))
    opt_d = torch.optim.AdamW(d.parameters(), hp.lr, betas=(hp.beta1, hp.beta2))
    tally = loop.Tally()
    if resumed:
        parts = {"discriminator": d, "opt_g": opt_g, "opt_d": opt_d}
        tally = loop.unpack(resumed.extra["training"], parts, {"train": crops.rng}, env, run_dir / "last.pt")
        progress.say(env.is_main, opts.quiet, f"resuming {run_dir / 'last.pt'} at step {tally.step}")
    return _Run(
        opts, env, run_dir, export, cfg, hp, mel_cfg, crops, g, d, opt_g, opt_d, tally, _init_steps(resumed, init)
    )


def _load(g: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load weights; a direct-phase head into an integrated-phase net gives its magnitude
    rows, and the new advance and offset rows keep their zero start (the priors)."""
    state = {k: v.float() for k, v in state.items()}
    own = g.state_dict()
    if "head.weight" in own and "head.weight" in state and state["head.weight"].shape != own["head.weight"].shape:
        bins = g.cfg.n_fft // 2 + 1
        for key in ("head.weight", "head.bias"):
            merged = own[key].clone()
            merged[:bins] = state[key][:bins]
            state[key] = merged
    g.load_state_dict(state)


def _init_steps(resumed: Checkpoint | None, init: Checkpoint | None) -> int:
    """Steps behind the --init weights, kept across --resume (and across chains of --init)."""
    if resumed:
        return resumed.meta.get("init_steps", 0)
    return init.meta.get("steps", 0) + init.meta.get("init_steps", 0) if init else 0


def _crops(opts: VocoderTrainOptions, env: loop.Env, mel_cfg: MelConfig, hp: VocoderTrainConfig) -> Crops:
    from ..registry import home_dir

    tc = opts.train
    cache = opts.cache_dir or home_dir() / "cache" / "training"
    say = lambda text: progress.say(env.is_main, opts.quiet, text)  # noqa: E731
    with loop.main_first(env):  # rank 0 fills the cache, the others then read it
        folders = list(opts.audio)
        return crops_from(folders, "wave", hp.segment_frames, mel_cfg, tc, tc.seed, env.rank, cache, env.is_main, say)


def _snapshot(r: _Run, with_state: bool = True) -> Checkpoint:
    """The generator as a vocoder checkpoint; ``with_state`` adds all it takes to resume."""
    t = r.tally
    meta = {"name": r.opts.name, **t.meta(), "audio": [str(p) for p in r.opts.audio], "genreshift": __version__}
    if r.init_steps:
        meta["init_steps"] = r.init_steps  # the weights' total training is steps + init_steps
    state = loop.pack(t, {"discriminator": r.d, "opt_g": r.opt_g, "opt_d": r.opt_d}, {"train": r.crops.rng})
    state["hparams"] = to_dict(r.hp)
    extra = {"training": state} if with_state else {}
    return Checkpoint("vocoder", r.opts.arch, r.cfg, r.mel_cfg, loop.state_dict(r.g), meta=meta, extra=extra)


def _save_last(r: _Run) -> None:
    if r.tally.saved != r.tally.step:
        loop.save(_snapshot(r), r.run_dir / "last.pt", r.env)
        loop.save(_snapshot(r, with_state=False), r.export, r.env)
        r.tally.saved = r.tally.step


def _fast_losses(r: _Run, wave: torch.Tensor, mel_in: torch.Tensor, losses: dict) -> torch.Tensor:
    """The fast vocoder's output; its magnitude (and, when weighted, phase and consistency)
    losses against the input's STFT on the vocoder's own frames go into ``losses``.

    A direct-phase net gets APNet's losses on its phase; an integrated-phase net gets them on
    what it predicts instead, its advance (``iaf``) and its offsets (``gd``), weighted by the
    input's magnitude (phase_losses.advance_loss, offset_loss). ``output_phase`` judges the
    phase of the spectrum the net puts out, whichever way it is made."""
    w, net = r.opts.weights, loop.unwrap(r.g)
    y_hat, parts = r.g(mel_in, with_spectrum=True, refine=r.hp.train_refinement)
    magnitude, phase = parts["magnitude"], parts["phase"]
    target = net.analyze(wave)
    losses["magnitude"] = magnitude_loss(magnitude, target.abs())
    if "advance" in parts:
        weight = target.abs()
        if w.phase_iaf:
            losses["iaf"] = advance_loss(parts["advance"], target.angle(), weight)
        if w.phase_gd:
            losses["gd"] = offset_loss(parts["offset"], target.angle(), weight)
    elif w.phase_ip or w.phase_gd or w.phase_iaf:
        losses.update(phase_losses(phase, target.angle()))
    if w.output_phase:
        spectrum = parts["spectrum"] if "spectrum" in parts else torch.polar(magnitude, phase)
        losses.update(output_phase_losses(spectrum, target))
    if w.consistency:  # in training the output is the plain iSTFT of the predicted spectrum
        losses["consistency"] = consistency_loss(torch.polar(magnitude, phase), net.analyze(y_hat))
    return y_hat


def _train_step(r: _Run, wave: torch.Tensor) -> dict[str, float]:
    g, d, opt_g, opt_d, hp, w, mel_cfg = r.g, r.d, r.opt_g, r.opt_d, r.hp, r.opts.weights, r.mel_cfg
    gan = r.tally.step >= hp.gan_start
    mel_in = log_mel(wave, mel_cfg)
    losses: dict[str, torch.Tensor] = {}
    if r.opts.arch == "fast":
        y_hat = _fast_losses(r, wave, mel_in, losses)
    else:
        y_hat = g(mel_in)
    if gan:  # D first, then G against the updated D (the HiFi-GAN order)
        losses["d"] = d_loss(d(wave), d(y_hat.detach()), hp.gan_loss)
        opt_d.zero_grad(set_to_none=True)
        losses["d"].backward()
        opt_d.step()
    losses["mel"] = F.l1_loss(log_mel(y_hat, mel_cfg), mel_in)
    mags = stft_magnitudes(y_hat, wave)
    losses["stft"] = stft_loss(y_hat, wave, mags)
    if w.low_band:
        losses["low_band"] = low_band_loss(y_hat, wave, mel_cfg.sample_rate, mags=mags)
    total = w.mel * losses["mel"] + w.stft * losses["stft"] + w.magnitude * losses.get("magnitude", 0.0)
    total = total + w.low_band * losses.get("low_band", 0.0)
    total = total + sum(getattr(w, field) * losses[k] for k, field in PHASE_WEIGHTS.items() if k in losses)
    if gan:
        with loop.no_sync(d):  # D's gradients from this pass are thrown away, not all-reduced
            outs = d(torch.cat([wave, y_hat]))
        real, fake = halves(outs)
        losses["adv"], losses["fm"] = g_loss(fake, hp.gan_loss), feature_loss(real, fake)
        total = total + w.adversarial * losses["adv"] + w.feature * losses["fm"]
    opt_g.zero_grad(set_to_none=True)
    total.backward()
    opt_g.step()
    return {k: float(v.detach()) for k, v in losses.items()}


@torch.no_grad()
def evaluate(g: nn.Module, val: torch.Tensor, mel_cfg: MelConfig, batch: int,
             refine: bool = False) -> tuple[dict, torch.Tensor]:  # fmt: skip
    """Mel L1 and multi-resolution STFT distance on held-out segments, and G's output (G stays
    in training mode: a fast vocoder's refinement runs only with ``refine``)."""
    device = next(g.parameters()).device
    l1 = st = 0.0
    outs = []
    for chunk in val.split(batch):
        chunk = chunk.to(device)
        mel_in = log_mel(chunk, mel_cfg)
        y = g(mel_in, refine=True) if refine else g(mel_in)
        l1 += float(F.l1_loss(log_mel(y, mel_cfg), mel_in)) * len(chunk)
        st += float(stft_loss(y, chunk)) * len(chunk)
        outs.append(y.cpu())
    return {"val_mel_l1": l1 / len(val), "val_stft": st / len(val)}, torch.cat(outs)


def _evaluate(r: _Run, progress: Progress) -> None:
    """Rank 0: validation figures, best.pt, and a sample to listen to and look at."""
    val = r.crops.val()
    r.tally.val, out = evaluate(loop.unwrap(r.g), val, r.mel_cfg, r.opts.train.batch_size, r.hp.train_refinement)
    progress.record({"step": r.tally.step, **r.tally.val})
    if r.tally.val["val_mel_l1"] < r.tally.best:
        r.tally.best = r.tally.val["val_mel_l1"]
        loop.save(_snapshot(r), r.run_dir / "best.pt", r.env)
    folder = loop.writable_dir(r.run_dir / "samples", "samples folder")
    real, fake = val[:4].flatten(), out[:4].flatten()
    if not (folder / "reference.wav").exists():
        samples.write_wav(folder / "reference.wav", real, r.mel_cfg.sample_rate)
    samples.write_wav(folder / f"step_{r.tally.step:07d}.wav", fake, r.mel_cfg.sample_rate)
    mels = [log_mel(x, r.mel_cfg).numpy() for x in (real, fake)]
    samples.write_bytes(folder / f"step_{r.tally.step:07d}.png", samples.spectrogram_png(mels))


def run(opts: VocoderTrainOptions) -> VocoderResult:
    _check(opts)
    tc = opts.train
    with loop.session(opts.device) as env, loop.cleared_on_failure(opts.out or Path("runs") / opts.name):
        r = _setup(opts, env)

        def step() -> dict[str, float]:
            return _train_step(r, r.crops.batch(tc.batch_size).to(env.device))

        loop.train_loop("train-vocoder", tc, env, r.run_dir, opts.quiet, r.tally, step,
                            lambda progress: _evaluate(r, progress), lambda: _save_last(r))  # fmt: skip
        return VocoderResult(r.export, r.run_dir, r.tally.step, r.tally.val)
