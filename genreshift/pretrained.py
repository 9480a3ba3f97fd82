"""Which translator and vocoder a conversion uses.

``resolve`` turns ``--to``/``--model``/``--vocoder`` into one ``Source`` without fetching any
weights: the genre, where the translator comes from (a file or a released model) and the
vocoder it runs with. ``load_translator`` and ``load_vocoder`` then only fetch and load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import checkpoint, registry
from .checkpoint import Checkpoint
from .errors import CheckpointError, ModelError, UnknownGenreError
from .config import GriffinLimConfig, MelConfig
from .vocoder import GriffinLim


@dataclass(frozen=True)
class Source:
    """A conversion's models, resolved once; no weights fetched yet."""

    genre: str  # names the output folder and the report
    translator: str  # for messages and the report: a file, or "released model 'rock'"
    translator_path: Path | None  # a local translator file (--model or a finetuned model) ...
    translator_entry: registry.Entry | None  # ... or a released translator
    vocoder: str  # "griffinlim", a released vocoder's name, or a checkpoint file
    vocoder_entry: registry.Entry | None  # the released vocoder, if ``vocoder`` names one
    note: str = ""  # one line when "auto" could not use the vocoder the translator names
    # A local translator file is read while resolving (its genre and vocoder are inside it);
    # kept, so loading does not read it again.
    local_checkpoint: Checkpoint | None = field(default=None, repr=False, compare=False)


def known_genres() -> dict[str, str]:
    """Genre name -> where it comes from (user models shadow built-in ones)."""
    genres = {g: "built-in" for g in registry.builtin_genres()}
    for m in registry.local_models():
        genres[m.name] = f"finetuned ({m.path})"
    return genres


def is_path(spec: str) -> bool:
    """A model spec is a file only if it says so: a ``.pt`` ending or a folder separator.
    (A file that happens to be called ``fast`` in the current folder is not the fast vocoder.)"""
    return spec.endswith(".pt") or "/" in spec or "\\" in spec


def resolve(genre: str | None, model: str | None = None, vocoder: str = "auto") -> Source:
    """The models ``--to genre``, ``--model PATH`` and ``--vocoder`` name, checked without
    fetching weights. With ``--model`` the genre is the checkpoint's own; ``--to`` may only
    repeat it (or name a checkpoint that records none)."""
    entries = registry.registry_entries()
    if model:
        ckpt = load_checkpoint(Path(model), "translator")
        if genre and ckpt.genres and genre not in ckpt.genres:
            raise UnknownGenreError(
                f"--to {genre}: {model} is a translator to {', '.join(ckpt.genres)}; leave out --to to use its genre"
            )
        name = ckpt.genres[0] if ckpt.genres else genre or Path(model).stem
        return _with_vocoder(name, str(model), Path(model), None, ckpt, ckpt.vocoder, vocoder, entries)
    if not genre:
        raise UnknownGenreError("say which genre to convert to with --to GENRE (see `genreshift genres`)")
    local = {m.name: m.path for m in registry.local_models()}
    if genre in local:
        ckpt = load_checkpoint(local[genre], "translator")
        return _with_vocoder(genre, str(local[genre]), local[genre], None, ckpt, ckpt.vocoder, vocoder, entries)
    entry = next((e for e in entries if e.kind == "translator" and e.genre == genre), None)
    if entry is None:
        valid = sorted({*local, *(e.genre for e in entries if e.kind == "translator" and e.genre)})
        raise UnknownGenreError(f"unknown genre '{genre}'; valid genres: {', '.join(valid) or 'none installed'}")
    return _with_vocoder(genre, f"released model '{entry.model}'", None, entry, None, entry.vocoder, vocoder, entries)


def _with_vocoder(genre, label, path, entry, ckpt, named: str | None, spec: str, entries) -> Source:
    """The Source, with ``spec`` (auto, griffinlim, a released name or a file) resolved."""
    note = ""
    if spec == "auto":
        spec = named or "griffinlim"
        if spec != "griffinlim" and not is_path(spec) and not any(e.model == spec for e in entries):
            note = f"vocoder '{spec}' (named by the {genre} translator) is not released; using griffinlim"
            spec = "griffinlim"
    vocoder_entry = None
    if spec != "griffinlim" and not is_path(spec):
        vocoder_entry = next((e for e in entries if e.model == spec and e.kind == "vocoder"), None)
        if vocoder_entry is None and spec == "melgan":
            raise ModelError(
                "no MelGAN vocoder is released; pass a MelGAN generator file instead: --vocoder PATH.pt "
                "(a melgan-neurips state_dict or a `train-vocoder --arch melgan` export)"
            )
        if vocoder_entry is None:
            names = [e.model for e in entries if e.kind == "vocoder"]
            raise ModelError(
                f"unknown vocoder '{spec}'; use auto, griffinlim, a .pt file, or one of: {', '.join(names) or 'none'}"
            )
    return Source(genre, label, path, entry, spec, vocoder_entry, note, ckpt)


def load_translator(source: Source) -> Checkpoint:
    """The translator checkpoint of ``source``, fetched if it is a released one."""
    if source.local_checkpoint is not None:
        return source.local_checkpoint
    if source.translator_path is not None:
        return load_checkpoint(source.translator_path, "translator")
    return load_checkpoint(registry.fetch(source.translator_entry), "translator", released=True)


def translator_checkpoint(spec: str) -> Checkpoint:
    """A genre's translator or a translator file (``is_path``), for starting a finetune."""
    return load_translator(resolve(None, spec, "griffinlim") if is_path(spec) else resolve(spec, None, "griffinlim"))


def load_vocoder(source: Source, mel: MelConfig, device: torch.device, int8: bool = False) -> nn.Module:
    """The vocoder of ``source`` on ``device``, in eval mode; its mel settings must be the
    translator's ``mel``. It carries its ``context_frames`` and ``cpu_batch`` (vocoder.VOCODERS).
    With ``int8``, on a CPU, a vocoder that offers it runs its main layers in int8
    (``FastVocoder.use_int8``)."""
    if source.vocoder == "griffinlim":
        return GriffinLim(GriffinLimConfig(), mel).to(device)
    if source.vocoder_entry is not None:
        ckpt = load_checkpoint(registry.fetch(source.vocoder_entry), "vocoder", released=True)
    else:
        ckpt = load_checkpoint(Path(source.vocoder), "vocoder")
    check_mel_match(mel, ckpt.mel, source.vocoder)
    model = build(ckpt, device, source.vocoder)
    if int8 and device.type == "cpu" and hasattr(model, "use_int8"):
        model.use_int8()
    return model


def build(ckpt: Checkpoint, device: torch.device, label: str) -> nn.Module:
    """``ckpt.build`` with its failure as a ModelError that names the model."""
    try:
        return ckpt.build(device)
    except CheckpointError as exc:
        raise ModelError(f"{label}: {exc}") from None


def check_mel_match(translator_mel: MelConfig, vocoder_mel: MelConfig, vocoder: str) -> None:
    if translator_mel != vocoder_mel:
        raise ModelError(
            f"vocoder '{vocoder}' was trained on different mel settings than the translator "
            f"({vocoder_mel} vs {translator_mel}); pick a matching vocoder"
        )


def load_checkpoint(path: Path, kind: str, released: bool = False) -> Checkpoint:
    """A checkpoint of ``kind`` ("translator" or "vocoder"); ModelError names the file and why.
    ``released``: ``path`` is what ``registry.fetch`` gave, hash-checked (``checkpoint.load``)."""
    try:
        ckpt = checkpoint.load(path, released)
    except CheckpointError as exc:
        raise ModelError(str(exc)) from None
    if ckpt.kind != kind:
        raise ModelError(f"{path}: is a {ckpt.kind} checkpoint, but a {kind} is needed here")
    return ckpt
