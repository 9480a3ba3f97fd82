"""Log-mel -> waveform: the table of vocoders (``fast_vocoder.py``, ``melgan.py``,
``griffinlim.py``), and what every one of them promises.

Every vocoder maps (B, n_mels, T) log-mel to (B, T * hop) samples, with sample ``hop * i``
to ``hop * (i + 1)`` belonging to frame ``i`` (the MelGAN framing of ``mel.py``).

Each vocoder class carries what the pipeline needs to know about it: its ``arch`` name, its
``config_class``, ``carries_phase`` (its chunks of one track must be synthesised in order,
``FastVocoder.synthesize``), ``context_frames`` (mel frames of context it needs on both sides of a
chunk to match a whole-file pass: its receptive field, rounded up; see tests/test_vocoder.py),
``window_frames`` (mel frames per window the pipeline cuts for it) and ``cpu_batch`` (windows
per call on a CPU, whatever --batch-size says). All are built as ``cls(cfg, mel)``;
``VOCODERS`` maps an arch name to its class.
"""

from __future__ import annotations

from torch import nn

from .config import WINDOW_FRAMES
from .fast_vocoder import FastVocoder, MelBands
from .griffinlim import GriffinLim
from .melgan import MelGAN

__all__ = ["VOCODERS", "WINDOW_FRAMES", "FastVocoder", "GriffinLim", "MelBands", "MelGAN"]

# The one table of vocoder architectures: arch name -> class (which carries the rest).
VOCODERS: dict[str, type[nn.Module]] = {cls.arch: cls for cls in (MelGAN, FastVocoder, GriffinLim)}
