"""Resampling: rates with little in common with 22050 Hz (awkward ratios) are resampled per
output sample, with the filter torchaudio uses, in bounded memory."""

from __future__ import annotations

import math
import resource

import pytest
import soundfile as sf
import torch
import torchaudio
from helpers import write_tone
from test_cli import run

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
def test_awkward_rates_resample_a_tone_cleanly_in_little_memory(rates):
    src, dst = rates
    assert resampling.is_awkward(src, dst) and not resampling.is_awkward(44100, 22050)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = torch.arange(2 * src) / src
    out = resampling.resample(torch.sin(2 * math.pi * 1000 * t), src, dst)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: torchaudio took GBs
    ideal = torch.sin(2 * math.pi * 1000 * torch.arange(out.shape[-1]) / dst)
    inner = slice(200, -200)  # the ends fade: the input is zero outside
    snr = 10 * torch.log10((ideal[inner] ** 2).sum() / ((ideal[inner] - out[inner]) ** 2).sum())
    assert snr > 60


def test_a_file_at_an_awkward_rate_converts_and_keeps_its_rate(served, tmp_path):
    song = write_tone(tmp_path / "in" / "odd.wav", 2.0, 44101)
    r = run("convert", song.parent, "--to", "rock", "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    info = sf.info(str(tmp_path / "out" / "odd.wav"))
    assert info.samplerate == 44101 and info.frames == 2 * 44101
