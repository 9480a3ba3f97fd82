"""The v3 phase losses (APNet) and the STFT consistency loss, and their train-vocoder flags."""

from __future__ import annotations

import json
import math

import pytest
import torch

from genreshift.train.phase_losses import (
    advance_loss,
    anti_wrap,
    consistency_loss,
    offset_loss,
    output_phase_losses,
    phase_losses,
)
from genreshift.vocoder import FastVocoder
from helpers import TINY_FAST

PI = math.pi


def _music(seconds: float, seed: int = 0) -> torch.Tensor:
    """A gliding tone with noise hits: phase that changes along both time and frequency."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * 22050)) / 22050
    f = 220 * (1 + 0.5 * torch.sin(2 * PI * 0.5 * t))
    hits = torch.randn(t.shape, generator=g) * (torch.remainder(t, 0.25) < 0.02)
    return 0.3 * torch.sin(2 * PI * torch.cumsum(f, 0) / 22050) + 0.1 * hits


def _spectrum(audio: torch.Tensor) -> torch.Tensor:
    return FastVocoder(TINY_FAST).analyze(audio[None])  # (1, 513, T) on the vocoder's frames


def test_anti_wrap_is_the_distance_to_zero_modulo_two_pi():
    x = torch.tensor([0.0, 2 * PI, -2 * PI, 6 * PI + 0.1, -4 * PI - 0.1, 0.3, -0.3])
    assert torch.allclose(anti_wrap(x), torch.tensor([0, 0, 0, 0.1, 0.1, 0.3, 0.3]), atol=1e-5)


def test_anti_wrap_at_plus_and_minus_pi():
    eps = 1e-3
    x = torch.tensor([PI, -PI, PI - eps, PI + eps, -PI + eps, -PI - eps], dtype=torch.float64)
    out = anti_wrap(x)
    assert torch.allclose(out[:2], torch.tensor([PI, PI], dtype=torch.float64))
    # Either side of +-pi is the same distance from 0: the function peaks there and folds back.
    assert torch.allclose(out[2:], torch.full((4,), PI - eps, dtype=torch.float64))
    dense = anti_wrap(torch.linspace(-20, 20, 10001))
    assert float(dense.min()) >= 0 and float(dense.max()) <= PI + 1e-6


def test_the_true_phase_gives_zero_loss_even_wrapped():
    phase = _spectrum(_music(1.0)).angle()
    for name, value in phase_losses(phase, phase).items():
        assert float(value) == 0, name
    turns = torch.randint(-3, 4, phase.shape) * 2 * PI  # the same phase, written 2 pi k away
    for name, value in phase_losses(phase + turns, phase).items():
        assert float(value) < 1e-5, name


def test_each_phase_loss_sees_its_own_error():
    phase = _spectrum(_music(1.0)).angle()
    bins, frames = torch.arange(phase.shape[1])[:, None], torch.arange(phase.shape[2])
    offset = phase_losses(phase + 0.5, phase)  # one constant offset: only the phase itself is off
    assert offset["ip"] == pytest.approx(0.5, abs=1e-4)
    assert float(offset["gd"]) < 1e-4 and float(offset["iaf"]) < 1e-4
    delay = phase_losses(phase + 0.2 * bins, phase)  # a phase slope along frequency is a time shift
    assert delay["gd"] == pytest.approx(0.2, abs=1e-4) and float(delay["ip"]) > 1
    drift = phase_losses(phase + 0.3 * frames, phase)  # a phase slope along time is a frequency shift
    assert drift["iaf"] == pytest.approx(0.3, abs=1e-4) and float(drift["gd"]) < 1e-4


def test_a_shifted_signal_has_a_different_phase():
    audio = _music(1.0)
    phase, shifted = _spectrum(audio).angle(), _spectrum(torch.roll(audio, 37)).angle()
    losses = phase_losses(shifted, phase)
    assert float(losses["ip"]) > 1 and float(losses["gd"]) > 0.2  # 37 samples: 2 pi 37 / 1024 = 0.23 per bin


def test_phase_losses_pull_a_free_phase_to_the_target():
    target = _spectrum(_music(0.5)).angle()
    phase = (target + 2.5 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))).requires_grad_()
    opt = torch.optim.Adam([phase], lr=0.05)
    first = None
    for _ in range(100):
        loss = sum(phase_losses(phase, target).values())
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first / 3


def test_consistency_is_zero_for_a_real_signals_spectrum():
    net = FastVocoder(TINY_FAST)
    spec = _spectrum(_music(1.0))
    energy = float(spec.abs().pow(2).mean())
    assert float(consistency_loss(spec, net.analyze(net._istft(spec)))) < 1e-8 * energy
    noise = torch.rand(spec.shape, generator=torch.Generator().manual_seed(0)) * 2 * PI
    scrambled = torch.polar(spec.abs(), noise)  # the true magnitude with a random phase: no signal has it
    assert float(consistency_loss(scrambled, net.analyze(net._istft(scrambled)))) > 0.1 * energy


@pytest.mark.usefixtures("one_thread")
def test_train_vocoder_logs_and_weights_the_phase_losses(tmp_path):
    from genreshift import checkpoint
    from test_vocoder_training import SIZES, TINY, fails_with, run
    from helpers import write_tone

    write_tone(tmp_path / "music" / "a.wav", 1.5)
    args = ["train-vocoder", "--audio", tmp_path / "music", "--arch", "fast", "--name", "voc"]
    phase = ["--ip-weight", "1", "--gd-weight", "1", "--iaf-weight", "1", "--consistency-weight", "0.1"]
    r = run(*args, "--out", tmp_path / "run", *SIZES["fast"], *TINY, "--steps", "2", "--gan-start", "100",
            "--refine-iters", "0", "--mel-iters", "0", "--log-every", "1", *phase)  # fmt: skip
    assert r.exit_code == 0, r.output
    ckpt = checkpoint.load(tmp_path / "run" / "voc.pt")
    assert set(ckpt.meta["final_losses"]) == {"magnitude", "mel", "stft", "ip", "gd", "iaf", "consistency"}
    assert (ckpt.config.refine_iters, ckpt.config.mel_iters) == (0, 0)
    lines = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("ip" in line for line in lines)
    melgan = ["--arch", "melgan", *SIZES["melgan"], "--ip-weight", "1"]
    fails_with(
        run(*args[:-4], "--name", "m", "--out", tmp_path / "m", *TINY, "--steps", "1", *melgan), "--arch fast only"
    )


def _true_advance_and_offset(spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What an integrated-phase net should predict for ``spec``: each frame's turn from the
    one before, and each frame's own phase as the offsets (frame 0 turns from nothing)."""
    phase = spec.angle()
    return torch.cat([phase[..., :1], torch.diff(phase, dim=-1)], dim=-1), phase


def test_the_true_advance_and_offsets_give_zero_loss_even_wrapped():
    spec = _spectrum(_music(1.0))
    advance, offset = _true_advance_and_offset(spec)
    weight = spec.abs()
    assert float(advance_loss(advance + 2 * PI, spec.angle(), weight)) < 1e-4
    assert float(offset_loss(offset - 4 * PI, spec.angle(), weight)) < 1e-4
    # a common offset is no error either: only the differences between bins count
    assert float(offset_loss(offset + 1.0, spec.angle(), weight)) < 1e-4


def test_a_shifted_advance_or_offset_costs_and_loud_bins_count_most():
    spec = _spectrum(_music(1.0))
    advance, offset = _true_advance_and_offset(spec)
    weight = spec.abs()
    assert float(advance_loss(advance + 0.5, spec.angle(), weight)) == pytest.approx(0.5, abs=1e-3)
    tilt = torch.arange(spec.shape[1], dtype=torch.float32)[:, None] * 0.3  # a group delay error
    assert float(offset_loss(offset + tilt, spec.angle(), weight)) == pytest.approx(0.3, abs=1e-3)
    # an error in the quietest half of the bins costs far less than the same in the loudest
    quiet = weight < weight.median()
    assert advance_loss(advance + 1.0 * quiet, spec.angle(), weight) < 0.1 * advance_loss(
        advance + 1.0 * ~quiet, spec.angle(), weight
    )


def test_train_vocoder_trains_an_integrated_phase_net_from_a_direct_one(tmp_path):
    """--phase integrated on --init of a direct-phase vocoder: its advance and offset losses
    are logged, and the file says how to rebuild it; --resume may not switch it back."""
    from genreshift import checkpoint
    from test_vocoder_training import SIZES, TINY, fails_with, run
    from helpers import write_tone

    write_tone(tmp_path / "music" / "a.wav", 1.5)
    args = ["train-vocoder", "--audio", tmp_path / "music", "--arch", "fast", "--name", "voc", *TINY]
    common = ["--steps", "2", "--gan-start", "100", "--refine-iters", "0", "--mel-iters", "0", "--log-every", "1"]
    r = run(*args, "--out", tmp_path / "direct", *SIZES["fast"], *common)
    assert r.exit_code == 0, r.output
    phase = ["--phase", "integrated", "--gd-weight", "1", "--iaf-weight", "1", "--output-phase-weight", "1"]
    r = run(*args, "--out", tmp_path / "run", "--init", tmp_path / "direct" / "voc.pt", *common, *phase)
    assert r.exit_code == 0, r.output
    ckpt = checkpoint.load(tmp_path / "run" / "voc.pt")
    assert ckpt.config.phase == "integrated"
    assert {"iaf", "gd", "iaf_out", "gd_out"} <= set(ckpt.meta["final_losses"])
    assert "ip" not in ckpt.meta["final_losses"]
    assert all(math.isfinite(v) for v in ckpt.meta["final_losses"].values())
    assert ckpt.build().carries_phase
    fails_with(
        run(*args, "--out", tmp_path / "run", "--resume", "--phase", "direct", "--steps", "3"), "phase=integrated"
    )
    bad = run(*args, "--out", tmp_path / "bad", "--phase", "bogus", *common)  # a usage error, not a traceback
    assert bad.exit_code == 2 and "is not one of" in bad.output and "Traceback" not in bad.output


def test_output_phase_losses_are_zero_for_the_true_spectrum_up_to_a_common_phase():
    spec = _spectrum(_music(1.0))
    losses = output_phase_losses(spec * torch.polar(torch.ones(()), torch.tensor(2.5)), spec)
    assert float(losses["iaf_out"]) < 1e-4 and float(losses["gd_out"]) < 1e-4


def test_output_phase_losses_see_a_wrong_turn_in_time_or_across_bins():
    spec = _spectrum(_music(1.0))
    frames = torch.arange(spec.shape[-1], dtype=torch.float32)
    bins = torch.arange(spec.shape[1], dtype=torch.float32)[:, None]
    late = output_phase_losses(spec * torch.polar(torch.ones(()), 0.5 * frames), spec)  # every bin turns 0.5 more
    assert float(late["iaf_out"]) == pytest.approx(1 - math.cos(0.5), abs=1e-3)
    assert float(late["gd_out"]) < 1e-4  # the same turn in every bin keeps the bins in line
    drift = output_phase_losses(spec * torch.polar(torch.ones(()), 0.01 * bins * frames), spec)
    assert float(drift["gd_out"]) > 0.05  # bins turning at different rates drift apart
    # a turn of pi is the largest error
    flip = output_phase_losses(spec * torch.polar(torch.ones(()), PI * frames), spec)
    assert float(flip["iaf_out"]) == pytest.approx(2.0, abs=1e-3)


def test_output_phase_losses_have_finite_gradients_where_the_output_is_silent():
    spec = _spectrum(_music(0.5))
    out = spec.clone()
    out[:, 100:200] = 0  # a silent band: its phase is undefined
    out.requires_grad_(True)
    sum(output_phase_losses(out, spec).values()).backward()
    assert torch.isfinite(torch.view_as_real(out.grad)).all()
