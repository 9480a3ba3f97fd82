"""Which translator and vocoder a conversion uses: names, paths and the registry resolved."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import checkpoint, registry
from .checkpoint import Checkpoint, CheckpointError
from .config import MelConfig
from .vocoder import GriffinLim

# Frames of mel context each vocoder needs on both sides of a chunk to match a
# whole-file pass (its receptive field, rounded up; see tests/test_vocoder.py). The fast
# vocoder's depends on its size: see vocoder_context.
VOCODER_CONTEXT = {"melgan": 32, "fast": 16, "griffinlim": 8}
# Windows per vocoder call on a CPU, whatever --batch-size says. MelGAN and Griffin-Lim work
# at the sample rate; a batch of their activations outgrows the CPU caches. Measured on a
# 2-core CPU (ms per window at 1 / 2 / 4 / 16 windows per call): MelGAN 330 / 280 / 860 /
# 950, Griffin-Lim 65 / 65 / 100 / 95, fast 8.5 / 11 / 10 / 8.8 (flat; 8 saves ~65 MB over 16).
# Fast v2 with its refinement (ms per window at 1 / 2 / 4 / 8): 83 / 93 / 96 / 94, flat too.
# MelGAN also holds ~200 MB of activations per window.
CPU_BATCH = {"melgan": 1, "griffinlim": 2, "fast": 8}


class ModelError(Exception):
    """A model that cannot be found or used; the message says why and what to do."""


class UnknownGenreError(ModelError):
    """--to names no installed or released genre (a usage error)."""


@dataclass
class LoadedTranslator:
    label: str  # genre or file, for messages and reports
    genre: str
    checkpoint: Checkpoint
    registry_vocoder: str | None  # the vocoder its registry entry names


@dataclass
class LoadedVocoder:
    name: str  # "fast", "melgan", "griffinlim" or a file
    arch: str
    module: nn.Module
    context: int


def known_genres() -> dict[str, str]:
    """Genre name -> where it comes from (user models shadow built-in ones)."""
    genres = {g: "built-in" for g in registry.builtin_genres()}
    for m in registry.local_models():
        genres[m.name] = f"finetuned ({m.path})"
    return genres


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(".pt") or "/" in spec or "\\" in spec or Path(spec).is_file()


def check_genre(genre: str | None, model: str | None = None) -> str:
    """The genre name a conversion will use, checked without fetching any weights."""
    if model:
        return genre or Path(model).stem
    if not genre:
        raise UnknownGenreError("say which genre to convert to with --to GENRE (see `genreshift genres`)")
    genres = known_genres()
    if genre not in genres:
        raise UnknownGenreError(f"unknown genre '{genre}'; valid genres: {', '.join(sorted(genres)) or 'none installed'}")
    return genre


def load_translator(genre: str | None, model: str | None = None) -> LoadedTranslator:
    """The translator for ``--to genre`` or ``--model PATH`` (PATH wins; its genre is the default)."""
    if model:
        ckpt = _load_kind(Path(model), "translator")
        name = genre or (ckpt.genres[0] if ckpt.genres else Path(model).stem)
        return LoadedTranslator(str(model), name, ckpt, None)
    genre = check_genre(genre)
    local = {m.name: m.path for m in registry.local_models()}
    if genre in local:
        return LoadedTranslator(genre, genre, _load_kind(local[genre], "translator"), None)
    entry = next(e for e in registry.registry_entries() if e.kind == "translator" and e.genre == genre)
    return LoadedTranslator(genre, genre, _load_kind(registry.fetch(entry), "translator"), entry.vocoder)


def load_vocoder(spec: str, translator: LoadedTranslator, device: torch.device) -> LoadedVocoder:
    """``spec`` is auto, griffinlim, a registry vocoder name, or a checkpoint path."""
    mel = translator.checkpoint.mel
    if spec == "auto":
        spec = translator.checkpoint.vocoder or translator.registry_vocoder or "griffinlim"
        if spec != "griffinlim" and not _looks_like_path(spec) and registry.find_entry(spec) is None:
            spec = "griffinlim"  # the named vocoder was never released: no trained one available
    if spec == "griffinlim":
        return LoadedVocoder("griffinlim", "griffinlim", GriffinLim(mel).to(device), VOCODER_CONTEXT["griffinlim"])
    if _looks_like_path(spec):
        ckpt = _load_kind(Path(spec), "vocoder")
    else:
        entry = registry.find_entry(spec)
        if entry is None or entry.kind != "vocoder":
            names = [e.model for e in registry.registry_entries() if e.kind == "vocoder"]
            raise ModelError(
                f"unknown vocoder '{spec}'; use auto, griffinlim, a .pt file, or one of: {', '.join(names) or 'none'}"
            )
        ckpt = _load_kind(registry.fetch(entry), "vocoder")
    check_mel_match(mel, ckpt.mel, spec)
    return LoadedVocoder(spec, ckpt.arch, build(ckpt, device, spec), vocoder_context(ckpt.arch, ckpt.config))


def build(ckpt: Checkpoint, device: torch.device, label: str) -> nn.Module:
    """``ckpt.build`` with its failure as a ModelError that names the model."""
    try:
        return ckpt.build(device)
    except CheckpointError as exc:
        raise ModelError(f"{label}: {exc}") from None


def vocoder_context(arch: str, cfg: object) -> int:
    """Mel frames of context a vocoder needs on each side of a chunk.

    The fast vocoder sees 3 frames (embedding) plus kernel_size // 2 per block, and the
    iSTFT overlaps 2 more. Its Griffin-Lim refinement spreads further, but that influence
    fades fast: 8 more frames keep chunked output within 40 dB of a whole-file pass
    (tests/test_vocoder.py).
    """
    if arch != "fast":
        return VOCODER_CONTEXT[arch]
    net = 3 + cfg.n_blocks * (cfg.kernel_size // 2) + 2  # type: ignore[attr-defined]
    refine = 8 if cfg.refine_iters or cfg.mel_iters else 0  # type: ignore[attr-defined]
    return max(VOCODER_CONTEXT["fast"], net + refine)


def check_mel_match(translator_mel: MelConfig, vocoder_mel: MelConfig, vocoder: str) -> None:
    if translator_mel != vocoder_mel:
        raise ModelError(
            f"vocoder '{vocoder}' was trained on different mel settings than the translator "
            f"({vocoder_mel} vs {translator_mel}); pick a matching vocoder"
        )


def _load_kind(path: Path, kind: str) -> Checkpoint:
    try:
        ckpt = checkpoint.load(path)
    except CheckpointError as exc:
        raise ModelError(str(exc)) from None
    if ckpt.kind != kind:
        raise ModelError(f"{path}: is a {ckpt.kind} checkpoint, but a {kind} is needed here")
    return ckpt
