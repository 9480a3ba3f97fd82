"""The converted samples of two example clips, and the one judge that compares them with the
stored reference samples (tests/data/reference_outputs.npz.xz) at a tolerance.

Used by tests/test_reference_output.py, which documents the tolerance and how to regenerate.
"""

from __future__ import annotations

import dataclasses
import io
import lzma
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from genreshift import checkpoint
from genreshift.pipeline import ConvertOptions, Converter
from helpers import tiny_vocoder, write_tone

REFERENCE = Path(__file__).parent / "data" / "reference_outputs.npz.xz"


# A tolerance bounds the largest |output - reference| of a clip and that of its TYPICAL share
# of samples (the 90th percentile): int8's rounding flips move short bursts of samples much
# more than float rounding moves any, while a real change moves most of them.
TYPICAL = 0.9


@dataclass(frozen=True)
class Tolerance:
    max_abs: float  # the largest |output - reference| allowed at any sample
    typical_abs: float  # ... and at the TYPICAL quantile of |output - reference|


def mode(int8: bool) -> str:
    return "int8" if int8 else "float32"


def example_runs(folder: Path, int8: bool, **changes) -> list[tuple[str, Path, ConvertOptions]]:
    """(clip name, input, options) of the two example conversions; ``changes`` replace
    options of both (the negative tests change a default this way).

    stereo: 1.6 s of 44.1 kHz stereo --to rock with the served tiny models (vocoder auto: the
    fast vocoder), whole-file segments; 137 mel frames, so two translator windows cross-fade.
    mono: 3.2 s of 22.05 kHz mono by the tiny rock translator and a tiny MelGAN given as a
    path, in 1 s segments; 275 frames, two 256-frame vocoder windows, so two segments meet.
    """
    stereo = write_tone(folder / "in" / "stereo.wav", 1.6, 44100, 2, subtype="FLOAT")
    mono = write_tone(folder / "in" / "mono.wav", 3.2, 22050, 1, subtype="FLOAT")
    melgan = folder / "melgan.pt"
    checkpoint.save(tiny_vocoder("melgan"), melgan)
    common = dict(genre="rock", device="cpu", int8=int8)
    runs = [
        ("stereo", stereo, ConvertOptions(output=folder / "stereo", **common)),
        ("mono", mono, ConvertOptions(vocoder=str(melgan), output=folder / "mono", segment_seconds=1.0, **common)),
    ]
    return [(name, song, dataclasses.replace(options, **changes)) for name, song, options in runs]


def convert_examples(
    folder: Path, int8: bool, tweak: Callable[[Converter], None] | None = None, **changes
) -> dict[str, np.ndarray]:
    """The float32 samples, (frames, channels), each example conversion writes. ``tweak`` is
    given each Converter, models loaded, before it converts (to change a weight)."""
    out = {}
    for name, song, options in example_runs(folder, int8, **changes):
        converter = Converter(options)
        if tweak is not None:
            converter.load_models()
            tweak(converter)
        [result] = converter.convert([song])
        assert result.status == "converted", result.message
        out[name], _ = sf.read(str(result.output), dtype="float32", always_2d=True)
    return out


@dataclass(frozen=True)
class Difference:
    clip: str
    max_abs: float
    frame: int  # where max_abs is
    channel: int
    rate: int
    typical_abs: float  # the TYPICAL quantile of |error|
    snr_db: float  # reference energy / error energy over the clip, in dB
    excess: float  # the larger of max_abs and typical_abs over their tolerance; <= 1 passes

    def __str__(self) -> str:
        return (f"{self.clip}: max |error| {self.max_abs:.3g} at sample {self.frame} ({self.frame / self.rate:.3f} s) "
                f"channel {self.channel}, {TYPICAL:.0%} of samples within {self.typical_abs:.3g}, "
                f"SNR {self.snr_db:.1f} dB: {self.excess:.3g} x the tolerance")  # fmt: skip


RATES = {"stereo": 44100, "mono": 22050}


def difference(clip: str, actual: np.ndarray, reference: np.ndarray, tol: Tolerance) -> Difference:
    """One clip against its reference (the SNR is reported, not judged)."""
    if actual.shape != reference.shape:
        return Difference(clip, math.inf, 0, 0, RATES[clip], math.inf, -math.inf, math.inf)
    error = np.abs(actual.astype(np.float64) - reference.astype(np.float64))
    frame, channel = np.unravel_index(np.argmax(error), error.shape)
    worst, typical = float(error[frame, channel]), float(np.quantile(error, TYPICAL))
    energy, noise = float(np.sum(reference.astype(np.float64) ** 2)), float(np.sum(error**2))
    snr = 10 * math.log10(energy / noise) if noise > 0 else math.inf
    excess = max(worst / tol.max_abs, typical / tol.typical_abs)
    return Difference(clip, worst, int(frame), int(channel), RATES[clip], typical, snr, excess)


def judge(actual: dict[str, np.ndarray], reference: dict[str, np.ndarray], tol: Tolerance) -> list[Difference]:
    """Every clip of ``reference`` against ``actual``, worst first."""
    missing = sorted(set(reference) ^ set(actual))
    assert not missing, f"clips not in both the output and the reference: {missing}"
    return sorted((difference(c, actual[c], reference[c], tol) for c in reference), key=lambda d: -d.excess)


def mismatch(actual: dict[str, np.ndarray], reference: dict[str, np.ndarray], tol: Tolerance) -> str | None:
    """None where every clip is within ``tol``, else the message a failing test shows."""
    diffs = judge(actual, reference, tol)
    if diffs[0].excess <= 1:
        return None
    shapes = "; ".join(f"{c}: output {actual[c].shape}, reference {reference[c].shape}" for c in reference
                       if actual[c].shape != reference[c].shape)  # fmt: skip
    return (f"output differs from the reference ({REFERENCE.name}; tolerance: max |error| {tol.max_abs:g}, "
            f"{TYPICAL:.0%} of samples within {tol.typical_abs:g}): " + "; ".join(map(str, diffs)) + (f" [shapes: {shapes}]" if shapes else "")
            + ". If the change is meant, regenerate: pytest tests/test_reference_output.py --update-reference")  # fmt: skip


# -- the stored reference: one LZMA stream over an uncompressed .npz, so that what repeats
# (a stereo clip's two equal channels, stored one after the other; a clip int8 leaves
# unchanged) is stored once.


def load(int8: bool) -> dict[str, np.ndarray]:
    arrays = _read()
    prefix = mode(int8) + "-"
    return {key.removeprefix(prefix): arrays[key] for key in arrays if key.startswith(prefix)}


def save(outputs: dict[str, np.ndarray], int8: bool) -> None:
    """Replace one mode's clips in the reference file, keeping the other mode's."""
    arrays = {k: v for k, v in _read().items() if not k.startswith(mode(int8) + "-")}
    arrays.update({f"{mode(int8)}-{clip}": np.asfortranarray(samples) for clip, samples in outputs.items()})
    buffer = io.BytesIO()
    np.savez(buffer, **dict(sorted(arrays.items())))
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_bytes(lzma.compress(buffer.getvalue(), preset=9 | lzma.PRESET_EXTREME))


def _read() -> dict[str, np.ndarray]:
    if not REFERENCE.exists():
        return {}
    with np.load(io.BytesIO(lzma.decompress(REFERENCE.read_bytes()))) as data:
        return {key: data[key] for key in data.files}
