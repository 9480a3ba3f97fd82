"""The output limiter: every sample under -0.3 dBFS, quiet audio untouched, no pumping,
the same result however the audio is cut into blocks, and through the real pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import write_tone

from genreshift import Converter, ConvertOptions, writing
from genreshift.limiter import CEILING, HOLD, LOOKAHEAD, RELEASE, Limiter, interpolator, limit
from genreshift.loudness import Leveller

RATE = 44100
NEAR = CEILING * 10 ** (-0.1 / 20)  # "at the ceiling": within 0.1 dB of it


def _music(seconds: float, channels: int = 2, seed: int = 0) -> np.ndarray:
    """A dense mix: a dozen notes swelling at their own rates, on noise; peak 1."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.3 * rng.standard_normal((channels, len(t)))
    for f in rng.uniform(60, 3000, 12):
        swell = 1 + 0.8 * np.sin(2 * np.pi * rng.uniform(0.3, 4) * t)
        x += rng.uniform(0.2, 1) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6, (channels, 1))) * swell
    return (x / np.abs(x).max()).astype(np.float32)


def _pushed(x: np.ndarray, sizes, **kwargs) -> tuple[np.ndarray, Limiter]:
    lim, parts, at = Limiter(RATE, **kwargs), [], 0
    for n in sizes:
        if at >= x.shape[1]:
            break
        parts.append(lim.push(x[:, at : at + n], last=at + n >= x.shape[1]))
        at += n
    return np.concatenate(parts, axis=1), lim


def _at_ceiling(y: np.ndarray) -> float:
    return float(np.mean(np.abs(y) >= NEAR))


def test_quiet_music_and_peaks_under_the_ceiling_pass_bit_for_bit():
    mix = _music(6.0)
    quiet = mix * np.float32(0.1 / np.sqrt(np.mean(mix**2)))  # -20 dBFS RMS
    t = np.arange(3 * RATE) / RATE
    tone = np.float32(0.95) * np.sin(2 * np.pi * 440 * t, dtype=np.float64).astype(np.float32)[None]  # -0.45 dBFS
    for x in (quiet, tone):
        y, _ = _pushed(x, [4410] * 1000)
        assert y.dtype == np.float32 and np.array_equal(y, x)


def test_a_loud_clipped_master_stays_under_the_ceiling_and_does_not_pile_at_it():
    mix = _music(20.0)
    clipped = np.clip(mix * 4, -1, 1)  # +12 dB, hard clipped: 10% of the samples at full scale
    assert np.mean(np.abs(clipped) >= 0.999) > 0.05
    for x in (mix, clipped):
        y = limit(torch.from_numpy(x), RATE).numpy()
        assert y.shape == x.shape and np.abs(y).max() <= CEILING
        assert _at_ceiling(y) < 1e-4


def test_a_full_scale_square_wave_is_turned_down_below_the_ceiling_not_bent():
    t = np.arange(3 * RATE) / RATE
    square = np.sign(np.sin(2 * np.pi * 441 * t + 0.1)).astype(np.float32)[None]
    y = limit(torch.from_numpy(square), RATE).numpy()
    # Its samples are all the same size, so one steady gain: the waveform keeps its shape,
    # turned down by the overshoot that 4x oversampling finds at its edges (about 2 dB; the
    # last 6 ms a little more, where the wave stops dead and rings harder).
    assert np.ptp(np.abs(y[:, : -RATE // 150])) < 1e-6 and np.abs(y).max() < 10 ** (-1.5 / 20) * CEILING
    assert _at_ceiling(y) == 0


def test_the_gain_follows_inter_sample_peaks():
    # A tone at a quarter of the sample rate, phased so every sample misses the crest by 45
    # degrees: samples at 0.9, the wave between them at 0.9 * sqrt(2).
    n = np.arange(RATE)
    x = (0.9 * np.sqrt(2) * np.sin(np.pi / 2 * n + np.pi / 4)).astype(np.float32)[None]
    assert abs(np.abs(x).max() - 0.9) < 1e-6  # under the ceiling sample by sample
    _, lim = _pushed(x, [RATE], keep_gains=True)
    gain = np.concatenate(lim.gains)[RATE // 10 : -RATE // 10]
    assert np.allclose(gain, CEILING / (0.9 * np.sqrt(2)), rtol=2e-3)  # the true peak held at the ceiling


def test_output_does_not_depend_on_the_block_sizes():
    x = np.clip(_music(8.0, channels=3, seed=1) * 3, -1, 1)
    whole, _ = _pushed(x, [x.shape[1]])
    rng = np.random.default_rng(0)
    for sizes in (rng.integers(1, 3000, 10000), [1] * 300 + [RATE] * 20, [441] * 1000):
        y, _ = _pushed(x, sizes)
        assert y.shape == x.shape and np.allclose(y, whole, rtol=0, atol=1e-6)


def test_channels_share_one_gain():
    x = np.clip(_music(3.0, channels=3, seed=2) * 2, -1, 1)
    x[1] *= 0.2  # a quiet channel is turned down with the loud ones: the image does not move
    y, lim = _pushed(x, [RATE] * 3, keep_gains=True)
    gain = np.concatenate(lim.gains)
    assert gain.min() < 0.9 and np.allclose(y, (x * gain).astype(np.float32), rtol=1e-6, atol=1e-7)


def test_a_steady_loud_tone_gets_a_steady_gain():
    t = np.arange(4 * RATE) / RATE
    for freq in (30.0, 100.0, 1000.0):  # a half period of 30 Hz is within HOLD
        x = (2.0 * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None]
        y, lim = _pushed(x, [22050] * 10, keep_gains=True)
        steady = 20 * np.log10(np.concatenate(lim.gains)[RATE // 2 : -RATE // 2])
        assert np.ptp(steady) < 1e-6, freq  # no wobble: no distortion from the gain
        assert abs(steady.mean() - 20 * np.log10(CEILING / 2)) < 0.01  # and no more cut than needed
        assert np.abs(y).max() <= CEILING


def test_the_gain_bends_down_before_a_peak_and_recovers_slowly_after_it():
    t = np.arange(2 * RATE) / RATE
    x = 0.25 * np.sin(2 * np.pi * 220 * t)
    burst = slice(RATE // 2, RATE // 2 + RATE // 20)  # 50 ms, 18 dB louder: needs about 6 dB off
    x[burst] *= 8.0
    y, lim = _pushed(x.astype(np.float32)[None], [4410] * 100, keep_gains=True)
    cut = -20 * np.log10(np.concatenate(lim.gains))
    depth, ahead = cut.max(), int(LOOKAHEAD * RATE)
    assert 5.5 < depth < 6.5 and np.abs(y).max() <= CEILING
    assert cut[: burst.start - ahead - 16].max() == 0 and cut[burst.start] > 0.8 * depth  # down in time
    # The attack is a smooth S-curve over the look-ahead: no step steeper than its slope allows.
    assert np.abs(np.diff(cut)).max() < 2.5 * depth / ahead
    # The release: held for HOLD, then the cut falls to 1/e of its depth in about RELEASE.
    after = burst.stop + int((HOLD + RELEASE) * RATE)
    assert 0.25 * depth < cut[after] < 0.5 * depth
    assert cut[after + int(RELEASE * RATE)] < 0.2 * depth and cut[-1] < 1e-4  # and gone after a while


def test_interpolator_is_a_good_sinc():
    h = interpolator()
    assert h.shape == (3, 16) and np.allclose(h.sum(axis=1), 1)
    n = np.arange(-7, 9)
    for p in (1, 2, 3):  # a slow sine is interpolated exactly
        assert abs(h[p - 1] @ np.sin(0.3 * n) - np.sin(0.3 * p / 4)) < 1e-3


@pytest.mark.parametrize("level", [True, False])
def test_a_loud_input_through_the_pipeline_never_passes_the_ceiling(served, tmp_path, monkeypatch, level):
    song = tmp_path / "loud.wav"
    data = sf.read(str(write_tone(tmp_path / "tone.wav", 4.0, 44100, 2)), dtype="float32")[0]
    sf.write(song, np.clip(data * 8, -1, 1), 44100, subtype="FLOAT")  # +18 dB, hard clipped
    made = []

    def spy(rate):
        made.append(Limiter(rate, keep_gains=True))
        return made[-1]

    monkeypatch.setattr(writing, "Limiter", spy)
    # The tiny models come out far quieter than this input: let the leveller lift them all
    # the way to its level, so the limiter has loud peaks to hold.
    monkeypatch.setattr(writing, "Leveller", lambda hop: Leveller(hop, max_boost_db=60.0))
    options = ConvertOptions(genre="rock", output=tmp_path / "o", level=level, segment_seconds=1.0)
    [result] = Converter(options).convert([song])
    assert result.status == "converted", result.message
    y = sf.read(str(result.output), dtype="float32")[0]
    assert y.shape == data.shape and np.abs(y).max() <= CEILING
    if level:  # levelled to the loud input, the output needed the limiter
        assert np.concatenate(made[0].gains).min() < 0.9
    # In memory (ArraySink) the same samples as in the file.
    memory = Converter(options).convert_audio(np.clip(data * 8, -1, 1).T, 44100)
    assert np.allclose(memory.T, y, atol=1e-6)
