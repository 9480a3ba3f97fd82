"""Streaming: a track converted in short segments equals a whole-file pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from genreshift import ConvertOptions, Converter, audio, chunking, mel as melmod, streaming, writing
from genreshift.audio import StreamResampler
from genreshift.limiter import limit
from genreshift.pipeline import vocoder_windows
from genreshift.streaming import TrackReader
from helpers import write_tone


def _snr_db(ref: np.ndarray, x: np.ndarray) -> float:
    return float(10 * np.log10((ref**2).sum() / max(((ref - x) ** 2).sum(), 1e-30)))


@pytest.mark.parametrize(
    "rates", [(44100, 22050), (48000, 22050), (8000, 22050), (192000, 22050), (22050, 48000), (44101, 22050),
              (22050, 44101), (11127, 22050)]  # the last three are awkward: resampled per output sample
)  # fmt: skip
def test_stream_resampler_matches_whole_resampling(rates):
    src, dst = rates
    x = torch.randn(2, int(src * 0.7) + 13)
    whole = audio.resample(x, src, dst)
    assert whole.shape[-1] == audio.resampled_length(x.shape[-1], src, dst)
    r = StreamResampler(src, dst)
    rng = np.random.default_rng(0)
    parts, at = [], 0
    while at < x.shape[-1]:
        n = int(rng.integers(1, src // 5))
        parts.append(r.push(x[:, at : at + n], last=at + n >= x.shape[-1]))
        at += n
    streamed = torch.cat(parts, dim=-1)
    assert streamed.shape == whole.shape
    assert torch.allclose(streamed, whole, atol=1e-5)


def _whole_file(conv: Converter, path: Path) -> np.ndarray:
    """The pre-streaming pipeline: every stage on the whole track at once, with the
    converter's models and the public stage functions."""
    cfg = conv.mel_config
    wave, rate = audio.load(path)
    wave = audio.resample(wave.mean(0, keepdim=True), rate, cfg.sample_rate)
    padded, length = melmod.pad_for_mel(wave, cfg)
    mel = melmod.log_mel(padded, cfg)
    with torch.inference_mode():
        plan = chunking.plan_windows(mel.shape[-1], conv.chunk)
        mel = chunking.stitch(conv.translator(chunking.split(mel, plan).flatten(0, 1))[:, None], plan)
        plan = chunking.plan_windows(mel.shape[-1], vocoder_windows(conv.vocoder))
        out = chunking.stitch(conv.vocoder(chunking.split(mel, plan).flatten(0, 1))[:, None], plan, cfg.hop_length)
    return audio.resample(out[..., :length], cfg.sample_rate, rate)[0].numpy()


@pytest.mark.parametrize("rate", [44100, 22050])
def test_short_segments_match_a_whole_file_pass(served, tmp_path, rate):
    song = write_tone(tmp_path / "long.wav", 21.3, rate, 2, subtype="FLOAT")
    outputs = {}
    for seconds in [1000.0, 6.0, 1.0]:  # one segment; 2 vocoder windows each; 1 window each
        conv = Converter(
            ConvertOptions(genre="rock", vocoder="fast", output=tmp_path / str(seconds), segment_seconds=seconds)
        )
        [result] = conv.convert([song])
        assert result.status == "converted", result.message
        out = tmp_path / str(seconds) / "long.wav"
        info = sf.info(str(out))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (
            rate,
            2,
            sf.info(str(song)).frames,
            "FLOAT",
        )
        outputs[seconds] = sf.read(str(out), dtype="float64")[0]
    whole = outputs[1000.0]
    # Loudness levelling works on a grid of the track, not of the segments: no difference.
    assert _snr_db(whole, outputs[6.0]) > 80 and _snr_db(whole, outputs[1.0]) > 80
    raw = Converter(
        ConvertOptions(genre="rock", vocoder="fast", output=tmp_path / "raw", segment_seconds=6.0, level=False)
    )
    assert raw.convert([song])[0].status == "converted"
    reference = limit(torch.from_numpy(_whole_file(raw, song))[None], rate)[0].numpy()
    assert _snr_db(reference, sf.read(str(tmp_path / "raw" / "long.wav"), dtype="float64")[0][:, 0]) > 60


def test_memory_follows_the_segment_not_the_track(served, tmp_path, monkeypatch):
    song = write_tone(tmp_path / "long.wav", 40.0, 44100, 1)
    monkeypatch.setattr(streaming, "BLOCK_SECONDS", 1.0)
    held = []
    samples = TrackReader.samples

    def spy(self, lo, hi):
        out = samples(self, lo, hi)
        held.append(self.buffered)
        return out

    monkeypatch.setattr(TrackReader, "samples", spy)
    [result] = Converter(ConvertOptions(genre="rock", output=tmp_path / "o", segment_seconds=3.0)).convert([song])
    assert result.status == "converted"
    # the segment, its windows' margins (~1.7 s each side) and one block: not 40 s
    assert len(held) > 10 and max(held) < 10 * 22050


def test_failure_midway_leaves_nothing(served, tmp_path, monkeypatch):
    data = sf.read(str(write_tone(tmp_path / "x.wav", 20.0, 22050, 1)), dtype="float32")[0]
    data[15 * 22050] = np.nan
    sf.write(tmp_path / "bad.wav", data, 22050, subtype="FLOAT")
    monkeypatch.setattr(streaming, "BLOCK_SECONDS", 2.0)
    out = tmp_path / "o"
    conv = Converter(ConvertOptions(genre="rock", output=out, segment_seconds=3.0))
    results = conv.convert([tmp_path / "bad.wav", tmp_path / "x.wav"])
    assert [r.status for r in results] == ["failed", "converted"]
    assert "contains NaN or infinite samples" in results[0].message
    assert sorted(p.name for p in out.iterdir()) == ["x.wav"]  # no bad.wav, no .part file


def test_write_failure_midway_leaves_nothing(served, tmp_path, monkeypatch):
    song = write_tone(tmp_path / "x.wav", 12.0, 22050, 1)
    write = writing.FileSink.write
    calls = []

    def failing(self, data):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        write(self, data)

    monkeypatch.setattr(writing.FileSink, "write", failing)
    out = tmp_path / "o"
    [result] = Converter(ConvertOptions(genre="rock", output=out, segment_seconds=2.0)).convert([song])
    assert result.status == "failed" and result.message == f"{out / 'x.wav'}: cannot write output: disk full"
    assert not out.exists() or not list(out.iterdir())
