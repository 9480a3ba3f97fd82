import math

import torch
import torchaudio

from genreshift.config import MelConfig
from genreshift.mel import log_mel, pad_for_mel

CFG = MelConfig()


def test_one_frame_per_hop():
    for n in [1024, 22050, 22050 * 3 + 17]:
        mel = log_mel(torch.randn(2, n) * 0.1, CFG)
        assert mel.shape == (2, CFG.n_mels, n // CFG.hop_length)


def test_matches_an_independent_torchaudio_reference():
    """The MelGAN front-end: reflect-pad (n_fft-hop)/2, no centring, |STFT|, Slaney mel, log10."""
    audio = torch.randn(22050) * 0.1
    ref = torchaudio.transforms.MelSpectrogram(
        sample_rate=22050, n_fft=1024, hop_length=256, win_length=1024, f_min=0, f_max=11025,
        n_mels=80, power=1.0, center=False, norm="slaney", mel_scale="slaney",
    )(torch.nn.functional.pad(audio[None, None], (384, 384), mode="reflect")[0, 0])  # fmt: skip
    expected = torch.log10(ref.clamp(min=1e-5))
    assert torch.allclose(log_mel(audio, CFG), expected, atol=1e-4)


def test_silence_is_the_log_floor():
    mel = log_mel(torch.zeros(4096), CFG)
    assert torch.all(mel == math.log10(1e-5)) and CFG.silence_level == -5


def test_a_tone_lands_in_the_right_mel_bin():
    t = torch.arange(22050) / 22050
    mel = log_mel(torch.sin(2 * torch.pi * 1000 * t), CFG)
    centers = torchaudio.functional.melscale_fbanks(513, 0, 11025, 80, 22050, "slaney", "slaney").argmax(0)
    peak = mel.mean(-1).argmax().item()
    assert abs(centers[peak].item() * 22050 / 1024 - 1000) < 120


def test_pad_for_mel_keeps_the_length_to_trim_back():
    padded, n = pad_for_mel(torch.ones(1, 1), CFG)
    assert n == 1 and padded.shape[-1] == 1024 and padded[0, 1:].abs().sum() == 0
    padded, n = pad_for_mel(torch.ones(3000), CFG)
    assert n == 3000 and padded.shape[-1] == 3072
