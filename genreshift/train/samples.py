"""What a training run writes at each evaluation to look at and listen to: mel images (PNG,
written without a plotting library) and WAV samples."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ..atomic import replacing


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
    from .. import audio

    peak = float(wave.abs().max()) if wave.numel() else 0.0
    wave = wave / peak * 0.9 if peak > 1.0 else wave  # a sample to listen to: never clip
    audio.write_atomic(path, wave.detach().reshape(1, -1).float().cpu(), rate, "WAV", None)
