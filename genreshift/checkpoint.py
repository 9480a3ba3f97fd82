"""Self-describing checkpoints: plain dicts, loaded with ``weights_only=True``, saved atomically.

A checkpoint says how to rebuild its model::

    {"format": "genreshift", "format_version": 1,
     "kind": "translator" | "vocoder", "arch": "travelgan" | "melgan" | "fast",
     "config": {...}, "mel": {...}, "genres": ["rock"], "vocoder": "fast" | None,
     "meta": {...}, "state_dict": {...}}

See docs/checkpoints.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import melgan
from .atomic import replacing
from .errors import CheckpointError, short_reason
from .config import MelConfig, TranslatorConfig, from_dict, to_dict
from .translator import Generator
from .vocoder import VOCODERS

FORMAT = "genreshift"
FORMAT_VERSION = 1
# (kind, arch) -> config class; the vocoders come from their table (those with weights).
ARCHS: dict[tuple[str, str], type] = {
    ("translator", "travelgan"): TranslatorConfig,
    **{("vocoder", arch): cls.config_class for arch, cls in VOCODERS.items() if cls.has_weights},
}


# Bounds on the mel settings a checkpoint may ask for: far above any real front-end, far
# below sizes whose filter banks and STFTs would not fit in memory.
MAX_N_FFT, MAX_N_MELS = 1 << 16, 1024


@dataclass
class Checkpoint:
    kind: str
    arch: str
    config: Any
    mel: MelConfig
    state_dict: dict[str, torch.Tensor]
    genres: list[str] = field(default_factory=list)
    vocoder: str | None = None  # the vocoder a translator was released with
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # training state, if any

    def to_plain(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "arch": self.arch,
            "config": to_dict(self.config),
            "mel": to_dict(self.mel),
            "genres": list(self.genres),
            "vocoder": self.vocoder,
            "meta": dict(self.meta),
            "state_dict": self.state_dict,
            **self.extra,
        }

    def build(self, device: torch.device | str = "cpu") -> nn.Module:
        """The model in eval mode on ``device``, weights in float32."""
        state = {k: v.float() if v.is_floating_point() else v for k, v in self.state_dict.items()}
        try:
            model = _construct(self.kind, self.arch, self.config, self.mel)
            model.load_state_dict(state)
        except Exception as exc:  # sizes that do not fit the weights, or make no network at all
            raise CheckpointError(f"not a usable genreshift checkpoint: {short_reason(exc)}") from None
        return model.to(device).eval()


def _construct(kind: str, arch: str, config: Any, mel: MelConfig) -> nn.Module:
    return VOCODERS[arch](config, mel) if kind == "vocoder" else Generator(config)


def check_weights(kind: str, arch: str, config: Any, mel: MelConfig, state_dict: Any, shapes: bool = True) -> None:
    """Raise ValueError unless ``state_dict`` is exactly the weights ``arch`` with ``config``
    has, all finite. The network is first built on the meta device (no memory), so absurd
    sizes in a hostile file cost nothing. ``shapes=False`` leaves out that build (for a
    released file, see ``load``); the other checks still run."""
    if not isinstance(state_dict, dict) or not state_dict:
        raise ValueError("'state_dict' is missing, empty or not a table of tensors")
    bad = [k for k, v in state_dict.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"'state_dict' entry {bad[0]!r} is not a tensor")
    for cfg in (config, mel):
        negative = [f.name for f in fields(cfg) if isinstance(getattr(cfg, f.name), (int, float))
                    and not isinstance(getattr(cfg, f.name), bool) and getattr(cfg, f.name) < 0]  # fmt: skip
        if negative:
            raise ValueError(f"negative {type(cfg).__name__} sizes: {', '.join(negative)}")
    if min(mel.sample_rate, mel.n_fft, mel.hop_length, mel.win_length, mel.n_mels) <= 0:
        raise ValueError("mel settings must be positive")
    if mel.n_fft > MAX_N_FFT or mel.n_mels > MAX_N_MELS or max(mel.hop_length, mel.win_length) > mel.n_fft:
        raise ValueError(f"mel settings out of range (n_fft {mel.n_fft}, n_mels {mel.n_mels}, hop {mel.hop_length})")
    if shapes:
        _check_shapes(kind, arch, config, mel, state_dict)
    broken = [k for k, v in state_dict.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        raise ValueError(f"NaN or infinite weights in {broken[0]}")


def _check_shapes(kind: str, arch: str, config: Any, mel: MelConfig, state_dict: dict[str, torch.Tensor]) -> None:
    """The names and shapes of ``state_dict`` are those of the network ``config`` builds."""
    # The fast vocoder's mel bands are buffers computed from data (the meta device cannot)
    # and not saved: its saved weights are the same without them.
    shapes_only = replace(config, refine_iters=0, mel_iters=0, magnitude_prior=False) if arch == "fast" else config
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in _construct(kind, arch, shapes_only, mel).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state_dict.items()}
    if set(got) != set(expected):
        extra, missing = sorted(set(got) - set(expected)), sorted(set(expected) - set(got))
        raise ValueError(f"weights do not fit its settings (unexpected: {extra[:3]}, missing: {missing[:3]})")
    wrong = [k for k in expected if got[k] != expected[k]]
    if wrong:
        raise ValueError(f"weights do not fit its settings ({wrong[0]}: {got[wrong[0]]} vs {expected[wrong[0]]})")


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temp file beside ``path``, then rename: a crash never leaves half a file."""
    with replacing(Path(path), ".tmp") as tmp:
        torch.save(obj, tmp)


def save(ckpt: Checkpoint, path: str | os.PathLike, half: bool = False) -> None:
    """Save ``ckpt``; ``half`` stores float weights as fp16 (the release format)."""
    plain = ckpt.to_plain()
    if half:
        plain["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt.state_dict.items()}
    atomic_save(plain, path)


def load(path: str | os.PathLike, released: bool = False) -> Checkpoint:
    """Read and validate a checkpoint; never runs code from the file.

    ``released``: the file is byte for byte a released one (its sha256 matched the registry's,
    ``registry.fetch``), whose weights were checked against its settings when it was packaged
    (scripts/package_weights.py loads its source checkpoint with this function). That check is then left out:
    the build on the meta device it needs costs 0.6-1 s at its first use in a process
    (torch's meta kernels import sympy and torch._dynamo), more than a short conversion. The
    model's ``load_state_dict`` still refuses weights that do not fit (``Checkpoint.build``)."""
    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except Exception as exc:  # pickle, zip and torch errors all mean "not a usable file"
        raise CheckpointError(f"{path}: not a readable genreshift checkpoint ({short_reason(exc)})") from None
    return from_plain(data, path, released)


def from_plain(data: Any, path: str | os.PathLike = "<memory>", released: bool = False) -> Checkpoint:
    if melgan.looks_like_neurips(data):
        return _from_melgan_neurips(data, path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a genreshift checkpoint (no 'format: genreshift' entry) "
            "nor a melgan-neurips generator state_dict"
        )
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {data['format_version']} is newer than this genreshift "
            f"understands ({FORMAT_VERSION}); upgrade genreshift"
        )
    key = (data.get("kind"), data.get("arch"))
    if key not in ARCHS:
        raise CheckpointError(f"{path}: unknown model kind/arch {key}")
    try:
        config = from_dict(ARCHS[key], data["config"])
        mel = from_dict(MelConfig, data["mel"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad settings in checkpoint ({exc})") from None
    try:
        check_weights(*key, config, mel, data.get("state_dict"), shapes=not released)
        known = {"format", "format_version", "kind", "arch", "config", "mel", "genres", "vocoder", "meta", "state_dict"}
        return Checkpoint(
            kind=data["kind"],
            arch=data["arch"],
            config=config,
            mel=mel,
            state_dict=data["state_dict"],
            genres=[str(g) for g in data.get("genres") or []],
            vocoder=data.get("vocoder"),
            meta=dict(data.get("meta") or {}),
            extra={k: v for k, v in data.items() if k not in known},
        )
    except Exception as exc:  # anything odd in a file from elsewhere is one line, not a traceback
        raise CheckpointError(f"{path}: not a usable genreshift checkpoint: {short_reason(exc)}") from None


def _from_melgan_neurips(state: dict[str, torch.Tensor], path: str | os.PathLike) -> Checkpoint:
    """A bare melgan-neurips ``Generator`` state_dict as a ``melgan`` vocoder checkpoint."""
    mel = MelConfig()
    try:
        cfg = melgan.config_of(state)
        melgan.check_matches(cfg, state, mel)
        check_weights("vocoder", "melgan", cfg, mel, state)  # also refuses NaN or infinite weights
    except ValueError as exc:
        raise CheckpointError(f"{path}: looks like a melgan-neurips generator, but {exc}") from None
    return Checkpoint("vocoder", "melgan", cfg, mel, state, meta={"source": "melgan-neurips state_dict"})
