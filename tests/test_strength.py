"""--strength: the translator's change scaled in the mel domain (issue 20, item 3)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn
from typer.testing import CliRunner

from genreshift import ConvertOptions, Converter, checkpoint, convert_audio
from genreshift.cli import app
from genreshift.config import MelConfig
from genreshift.mel import log_mel
from genreshift.options import MAX_STRENGTH
from genreshift.translator import AtStrength, Generator, at_strength
from helpers import TINY_TRANSLATOR, tiny_translator, write_tone


def _acting_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    g = Generator(TINY_TRANSLATOR)
    nn.init.normal_(g.out[1].weight, std=0.2)
    return g.eval()


def test_at_strength_scales_the_change_in_the_mel_domain():
    g = _acting_generator()
    mel = torch.randn(2, TINY_TRANSLATOR.n_mels, 40) - 2
    assert at_strength(g, 1.0) is g
    assert isinstance(at_strength(g, 0.0), nn.Identity)
    with torch.no_grad():
        change = g(mel) - mel
        assert change.abs().mean() > 0.05  # the generator really acts
        for s in (0.25, 0.5, 1.5):
            scaled = at_strength(g, s)
            assert isinstance(scaled, AtStrength)
            torch.testing.assert_close(scaled(mel), mel + s * change, atol=1e-5, rtol=1e-5)


def test_options_refuse_a_strength_out_of_range():
    for bad in (-0.1, MAX_STRENGTH + 0.01, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match="strength"):
            ConvertOptions(genre="rock", strength=bad)
    assert ConvertOptions(genre="rock", strength=0).strength == 0
    assert ConvertOptions(genre="rock", strength=MAX_STRENGTH).strength == MAX_STRENGTH


def test_cli_refuses_a_strength_out_of_range(tmp_path):
    song = write_tone(tmp_path / "s.wav")
    for bad in ("-1", "2", "nan"):
        result = CliRunner().invoke(app, ["convert", str(song), "--to", "rock", "--strength", bad])
        assert result.exit_code == 2, (bad, result.output)
        assert "--strength" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "converted").exists()


def _identity_translator(path):
    """A fresh generator: its output heads start at zero and its colour map at identity, so
    it returns the mel unchanged: a conversion through it is the vocoder alone."""
    ckpt = tiny_translator("rock")
    g = Generator(TINY_TRANSLATOR)
    ckpt = checkpoint.Checkpoint("translator", "travelgan", TINY_TRANSLATOR, MelConfig(), g.state_dict(),
                                 genres=["rock"], vocoder=ckpt.vocoder)  # fmt: skip
    checkpoint.save(ckpt, path)
    return path


def _acting_translator(path):
    ckpt = tiny_translator("rock")
    ckpt = checkpoint.Checkpoint("translator", "travelgan", TINY_TRANSLATOR, MelConfig(),
                                 _acting_generator().state_dict(), genres=["rock"], vocoder=ckpt.vocoder)  # fmt: skip
    checkpoint.save(ckpt, path)
    return path


def _clip(seconds: float = 2.0, rate: int = 22050) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(3)
    wave = 0.3 * np.sin(2 * np.pi * 220 * t) * (t % 0.5 < 0.3) + 0.05 * np.sin(2 * np.pi * 1500 * t)
    return (wave + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_strength_zero_is_the_vocoder_alone(served, tmp_path):
    acting, identity = _acting_translator(tmp_path / "a.pt"), _identity_translator(tmp_path / "i.pt")
    clip = _clip()
    vocoder_only = convert_audio(clip, 22050, "rock", model=str(identity), device="cpu")
    at_zero = convert_audio(clip, 22050, "rock", model=str(acting), device="cpu", strength=0.0)
    at_one = convert_audio(clip, 22050, "rock", model=str(acting), device="cpu")
    np.testing.assert_allclose(at_zero, vocoder_only, atol=1e-5)
    assert np.abs(at_one - vocoder_only).mean() > 10 * np.abs(at_zero - vocoder_only).mean() + 1e-4


def test_strength_moves_the_output_monotonically(served, tmp_path):
    """Levelling off, so loudness matching cannot hide the change: the output's log-mel moves
    further from the vocoder-only one at every step of S, and S = 1 is the default."""
    acting = str(_acting_translator(tmp_path / "a.pt"))
    clip = torch.from_numpy(_clip())
    outputs = {}
    for s in (0.0, 0.5, 1.0, 1.5):
        conv = Converter(ConvertOptions(genre="rock", model=acting, device="cpu", level=False, strength=s))
        outputs[s] = log_mel(conv.convert_audio(clip, 22050), MelConfig())
    distances = [float((outputs[s] - outputs[0.0]).abs().mean()) for s in (0.5, 1.0, 1.5)]
    assert distances[0] > 0.01
    assert distances[0] < distances[1] < distances[2], distances
    default = Converter(ConvertOptions(genre="rock", model=acting, device="cpu", level=False))
    torch.testing.assert_close(log_mel(default.convert_audio(clip, 22050), MelConfig()), outputs[1.0])


def test_cli_strength_reaches_the_output(served, tmp_path):
    song = write_tone(tmp_path / "in" / "s.wav", 2.0)
    written = {}
    for s in ("0", "1"):
        out = tmp_path / f"out{s}"
        result = CliRunner().invoke(app, ["convert", str(song), "--to", "rock", "-o", str(out), "-q", "--strength", s])
        assert result.exit_code == 0, result.output
        written[s] = sf.read(str(out / "s.wav"), dtype="float32")[0]
    api = convert_audio(sf.read(str(song), dtype="float32")[0], 22050, "rock", device="cpu", strength=0.0)
    np.testing.assert_allclose(written["0"], api, atol=1e-4)  # 16-bit file vs float
    assert np.abs(written["1"] - written["0"]).mean() > 1e-3
