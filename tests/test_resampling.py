"""Resampling: rates with little in common with 22050 Hz (awkward ratios) are resampled per
output sample, with the filter torchaudio uses, in bounded memory."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch
import torchaudio
from helpers import write_tone
from test_cli import run

ROOT = Path(__file__).resolve().parents[1]

from genreshift import resampling


@pytest.mark.parametrize("rates", [(44100, 22050), (48000, 22050), (22050, 48000), (8000, 22050), (192000, 22050)])
def test_the_per_sample_filter_is_torchaudios(rates):
    """On rates torchaudio handles, evaluating its kernel per output sample gives its output."""
    src, dst = rates
    x = torch.randn(2, int(src * 0.3) + 7, generator=torch.Generator().manual_seed(0))
    expected = torchaudio.functional.resample(x, src, dst)
    got = resampling._sinc_at(x, 0, src, dst, 0, resampling.resampled_length(x.shape[-1], src, dst))
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize("rates", [(44101, 22050), (22050, 44101), (11127, 22050)])
def test_awkward_rates_resample_a_tone_cleanly_without_torchaudios_kernel(rates, monkeypatch):
    src, dst = rates
    assert resampling.is_awkward(src, dst) and not resampling.is_awkward(44100, 22050)

    def refuse(*args, **kwargs):
        raise AssertionError("torchaudio's kernel for this ratio takes gigabytes")

    monkeypatch.setattr(torchaudio.functional, "resample", refuse)
    t = torch.arange(2 * src) / src
    out = resampling.resample(torch.sin(2 * math.pi * 1000 * t), src, dst)
    ideal = torch.sin(2 * math.pi * 1000 * torch.arange(out.shape[-1]) / dst)
    inner = slice(200, -200)  # the ends fade: the input is zero outside
    snr = 10 * torch.log10((ideal[inner] ** 2).sum() / ((ideal[inner] - out[inner]) ** 2).sum())
    assert snr > 60


def test_awkward_resampling_memory_does_not_grow_with_the_ratio():
    """In a fresh process (so no earlier test's peak hides it): 10 s at 44101 Hz, whose
    torchaudio kernel would be 4 GB, raise the peak resident memory by under 150 MB."""
    code = (
        "import resource, torch\n"
        "from genreshift import resampling\n"
        "x = torch.randn(2, 441010)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "y = resampling.resample(x, 44101, 22050)\n"
        "assert y.shape == (2, 220500), y.shape\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[-1]) < 150


def test_an_empty_input_gives_an_empty_output():
    assert resampling.resample(torch.zeros(2, 0), 44101, 22050).shape == (2, 0)
    r = resampling.StreamResampler(44101, 22050)
    assert r.push(torch.zeros(1, 0), last=True).shape == (1, 0)


def test_a_file_at_an_awkward_rate_converts_and_keeps_its_rate(served, tmp_path):
    song = write_tone(tmp_path / "in" / "odd.wav", 2.0, 44101)
    r = run("convert", song.parent, "--to", "rock", "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    info = sf.info(str(tmp_path / "out" / "odd.wav"))
    assert info.samplerate == 44101 and info.frames == 2 * 44101
