"""The v3 translator: colour map, smooth gain, bounded residual, content loss, the paired
recipe and --max-minutes; and that v1/v2 translator files still load and convert."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from genreshift import checkpoint
from genreshift.cli import app
from genreshift.config import TranslatorConfig
from genreshift.train.config import finetune_recipe, new_translator
from genreshift.train.finetune_losses import content_loss, fine_structure, mean_colour, paired_colour
from genreshift.translator import MEL_CENTER, Generator, interpolation
from helpers import write_tone

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
SMALL = dict(channels=16, n_blocks=2, kernel_size=3)


def harmonic_mel(f0_bin: int, frames: int = 40) -> torch.Tensor:
    """(1, 80, frames) log-mel with peaks every f0_bin bins on a -4 floor."""
    mel = torch.full((1, 80, frames), -4.0)
    mel[:, f0_bin::f0_bin] = -1.0
    return mel


def test_fresh_v3_generator_is_the_identity_and_keeps_v1_keys():
    x = torch.randn(2, 80, 37) - 2
    for cfg in (TranslatorConfig(**SMALL), TranslatorConfig(**SMALL, colour=True, gain_points=8, residual_limit=0.3)):
        torch.testing.assert_close(Generator(cfg)(x), x)
    v1_keys = set(Generator(TranslatorConfig(**SMALL)).state_dict())
    v3_keys = set(Generator(TranslatorConfig(**SMALL, colour=True, gain_points=8)).state_dict())
    assert v1_keys < v3_keys and v3_keys - v1_keys == {
        "colour.scale", "colour.offset", "gain.1.weight", "gain.1.bias"}  # fmt: skip


def test_colour_maps_each_bin():
    g = Generator(TranslatorConfig(**SMALL, colour=True))
    scale, offset = torch.linspace(0.5, 1.5, 80), torch.linspace(-1, 1, 80)
    g.colour.fit(scale, offset)
    x = torch.randn(1, 80, 10) - 2
    torch.testing.assert_close(g(x), MEL_CENTER + scale[:, None] * (x - MEL_CENTER) + offset[:, None])


def test_interpolation_is_piecewise_linear_and_sums_to_one():
    w = interpolation(16, 80)
    torch.testing.assert_close(w.sum(1), torch.ones(80))
    assert w[0, 0] == 1 and w[-1, -1] == 1
    ramp = w @ torch.arange(16.0)  # linear control values stay linear across the bins
    torch.testing.assert_close(ramp, torch.linspace(0, 15, 80))


def test_residual_is_bounded_and_gain_is_smooth():
    g = Generator(TranslatorConfig(**SMALL, gain_points=8, residual_limit=0.25))
    with torch.no_grad():
        g.out[1].bias.fill_(10.0)  # a huge residual is squashed to the limit
        x = torch.randn(1, 80, 12) - 2
        change = g(x) - x
        assert change.max() <= 0.25 + 1e-5 and change.min() > 0.2
        g.out[1].bias.zero_()
        g.gain[1].bias.normal_()
        change = g(x) - x
    second_difference = change[:, 2:] - 2 * change[:, 1:-1] + change[:, :-2]
    kinks = (second_difference.abs() > 1e-4).any(dim=-1).sum()
    assert kinks <= 2 * 6  # linear between control points: bends only beside the 6 inner ones, of 78 bins


def test_content_loss_allows_envelope_changes_but_not_moved_harmonics():
    mel = harmonic_mel(6)
    tilt = torch.linspace(0.5, -0.5, 80)[None, :, None]  # an EQ: smooth across bins
    assert content_loss(mel, mel + tilt) < 1e-3
    moved = torch.roll(mel, 3, dims=1)  # the same harmonics three bins higher
    assert content_loss(mel, moved) > 0.5
    assert fine_structure(mel + 1.0).sub(fine_structure(mel)).abs().max() < 1e-6


def test_paired_colour_recovers_a_known_affine_map():
    torch.manual_seed(0)
    src = torch.randn(4, 80, 50) - 2
    scale, offset = torch.linspace(0.7, 1.3, 80), torch.linspace(0.5, -0.5, 80)
    tgt = MEL_CENTER + scale[:, None] * (src - MEL_CENTER) + offset[:, None]
    got_scale, got_offset = paired_colour(src, tgt)
    torch.testing.assert_close(got_scale, scale, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_offset, offset, atol=1e-4, rtol=1e-4)
    ones, shift = mean_colour(src, src + 0.3)
    assert torch.all(ones == 1) and torch.allclose(shift, torch.full((80,), 0.3), atol=1e-5)


def test_recipes():
    paired_hp, paired_w = finetune_recipe(paired=True)
    assert paired_hp.lr == 1e-3 and paired_w.paired == 1
    assert paired_w.adversarial == paired_w.travel == paired_w.siamese == paired_w.identity == paired_w.content == 0
    hp, w = finetune_recipe(paired=False)
    assert hp.lr == 1e-4 and w.adversarial == 1 and w.content > 0 and w.identity == 0
    assert new_translator(True).colour and new_translator(False).gain_points > 0
    assert TranslatorConfig() == TranslatorConfig(colour=False, gain_points=0, residual_limit=0.0)  # the v1 layout


@pytest.fixture
def pairs(tmp_path) -> tuple[Path, Path]:
    """The same notes as sines (source) and as square waves at half the level (target)."""
    t = np.arange(int(1.6 * 22050)) / 22050
    for name, f in (("a", 220.0), ("b", 330.0)):
        phase = 2 * np.pi * f * t
        for side, wave in (("src", 0.3 * np.sin(phase)), ("tgt", 0.15 * np.sign(np.sin(phase)))):
            (tmp_path / side).mkdir(exist_ok=True)
            sf.write(str(tmp_path / side / f"{name}.wav"), wave.astype(np.float32), 22050)
    return tmp_path / "src", tmp_path / "tgt"


def finetune(pairs, out: Path, *extra):
    args = ["finetune", "--source", pairs[0], "--target", pairs[1], "--name", "p", "--out", out, "--channels", "16",
            "--blocks", "2", "--kernel-size", "3", "--window-frames", "24", "--batch-size", "2", "--val-crops", "2",
            "--eval-every", "1000", "--save-every", "1000", *extra]  # fmt: skip
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_paired_recipe_trains_only_the_translator_and_beats_its_start(pairs, tmp_path):
    result = finetune(pairs, tmp_path / "p.pt", "--paired", "--steps", "30", "--parts", "1")
    assert result.exit_code == 0, result.output
    ckpt = checkpoint.load(tmp_path / "p.pt")
    assert ckpt.config.colour and set(ckpt.meta["final_losses"]) == {"paired", "grad_norm"}  # no GAN terms, no D step
    run = checkpoint.load(tmp_path / "home" / "runs" / "p" / "last.pt")
    assert run.extra["training"]["hparams"]["lr"] == 1e-3
    log = (tmp_path / "home" / "runs" / "p" / "log.jsonl").read_text()
    assert '"val_paired"' in log


def test_max_minutes_stops_before_steps_and_saves(pairs, tmp_path):
    started = time.monotonic()
    result = finetune(pairs, tmp_path / "m.pt", "--paired", "--steps", "100000", "--max-minutes", "0.05")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 60
    ckpt = checkpoint.load(tmp_path / "m.pt")
    assert 0 < ckpt.meta["steps"] < 100000 and "val_paired" in ckpt.meta["val"]
    last = checkpoint.load(tmp_path / "home" / "runs" / "p" / "last.pt")
    training = last.extra["training"]  # saved as at the end of a run
    # With pairs the model file is the best step's, which may come before the clock stopped the run
    assert training["step"] >= ckpt.meta["steps"] == training["best_step"]
    assert training["step"] not in (0, 100000)
    bad = finetune(pairs, tmp_path / "n.pt", "--max-minutes", "0")
    assert bad.exit_code == 2


def v2_translator_file(path: Path) -> Path:
    """A translator file exactly as v1/v2 wrote them: its config has no v3 fields."""
    cfg = TranslatorConfig(n_mels=80, channels=16, n_blocks=2, kernel_size=3, window_frames=32)
    torch.manual_seed(0)
    g = Generator(cfg)
    with torch.no_grad():
        g.out[1].weight.normal_(std=0.01)  # a non-identity translator
    plain = {
        "format": "genreshift", "format_version": 1, "kind": "translator", "arch": "travelgan",
        "config": {"n_mels": 80, "channels": 16, "n_blocks": 2, "kernel_size": 3, "window_frames": 32},
        "mel": {"sample_rate": 22050, "n_fft": 1024, "hop_length": 256, "win_length": 1024, "n_mels": 80,
                "f_min": 0.0, "f_max": None, "log_floor": 1e-05},
        "genres": ["old"], "vocoder": "griffinlim", "meta": {"steps": 1},
        "state_dict": {k: v.half() for k, v in g.state_dict().items()},
    }  # fmt: skip
    torch.save(plain, path)
    return path


def test_v1_v2_translator_files_still_load_and_convert(tmp_path):
    path = v2_translator_file(tmp_path / "old.pt")
    ckpt = checkpoint.load(path)
    assert ckpt.config == TranslatorConfig(channels=16, n_blocks=2, kernel_size=3, window_frames=32)
    assert not ckpt.config.colour and ckpt.config.gain_points == 0 and ckpt.config.residual_limit == 0
    g = ckpt.build()
    assert g.colour is None and g.gain is None
    song = write_tone(tmp_path / "song.wav", 0.6)
    args = ["convert", str(song), "--model", str(path), "-o", str(tmp_path / "out"), "-q"]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sf.info(str(tmp_path / "out" / "song.wav")).frames == round(0.6 * 22050)
