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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import melgan_neurips
from .atomic import replacing
from .errors import short_reason
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


class CheckpointError(Exception):
    """A weights file that cannot be used; the message names the file and the reason."""


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
        model = VOCODERS[self.arch](self.config, self.mel) if self.kind == "vocoder" else Generator(self.config)
        state = {k: v.float() if v.is_floating_point() else v for k, v in self.state_dict.items()}
        model.load_state_dict(state)
        return model.to(device).eval()


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temp file beside ``path``, then rename: a crash never leaves half a file."""
    with replacing(Path(path), ".tmp") as tmp:
        torch.save(obj, tmp)


def save(ckpt: Checkpoint, path: str | os.PathLike, half: bool = False) -> None:
    """Save ``ckpt``; ``half`` stores float weights as fp16 (the release format)."""
    plain = ckpt.to_plain()
    if half:
        plain["state_dict"] = {
            k: v.half() if v.is_floating_point() else v for k, v in ckpt.state_dict.items()
        }
    atomic_save(plain, path)


def load(path: str | os.PathLike) -> Checkpoint:
    """Read and validate a checkpoint; never runs code from the file."""
    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except Exception as exc:  # pickle, zip and torch errors all mean "not a usable file"
        raise CheckpointError(f"{path}: not a readable genreshift checkpoint ({short_reason(exc)})") from None
    return from_plain(data, path)


def from_plain(data: Any, path: str | os.PathLike = "<memory>") -> Checkpoint:
    if melgan_neurips.looks_like(data):
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
    known = {"format", "format_version", "kind", "arch", "config", "mel", "genres", "vocoder", "meta", "state_dict"}
    return Checkpoint(
        kind=data["kind"],
        arch=data["arch"],
        config=config,
        mel=mel,
        state_dict=data["state_dict"],
        genres=list(data.get("genres", [])),
        vocoder=data.get("vocoder"),
        meta=dict(data.get("meta", {})),
        extra={k: v for k, v in data.items() if k not in known},
    )


def _from_melgan_neurips(state: dict[str, torch.Tensor], path: str | os.PathLike) -> Checkpoint:
    """A bare melgan-neurips ``Generator`` state_dict as a ``melgan`` vocoder checkpoint."""
    mel = MelConfig()
    try:
        cfg = melgan_neurips.config_of(state)
        melgan_neurips.check_matches(cfg, state, mel)
    except ValueError as exc:
        raise CheckpointError(f"{path}: looks like a melgan-neurips generator, but {exc}") from None
    return Checkpoint("vocoder", "melgan", cfg, mel, state, meta={"source": "melgan-neurips state_dict"})
