"""genreshift: convert folders of music to another genre.

The Python API (docs/api.md)::

    from genreshift import convert_audio
    out = convert_audio(wave, 44100, genre="rock")  # (channels, samples) in, the same out

``Converter``, ``ConvertOptions``, ``TrackResult`` and ``convert_audio`` are imported on
first use (PEP 562), so ``import genreshift`` (and ``genreshift --help``) does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.3.0"
__all__ = ["Converter", "ConvertOptions", "TrackResult", "convert_audio", "__version__"]

_LAZY = {"Converter": "pipeline", "ConvertOptions": "options", "TrackResult": "options", "convert_audio": "pipeline"}

if TYPE_CHECKING:
    from .options import ConvertOptions, TrackResult  # noqa: F401
    from .pipeline import Converter, convert_audio  # noqa: F401


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
