"""The public API: lazy exports, convert_audio in memory, Converter's properties and its
one resolution of the models, and the example in docs/api.md."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

import genreshift
from genreshift import ConvertOptions, Converter, checkpoint, convert_audio, pretrained, registry
from genreshift.audio import AudioError
from genreshift.cli import app
from helpers import tiny_translator, write_tone

ROOT = Path(__file__).parents[1]


def _python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout


def test_help_and_import_do_not_import_torch():
    code = (
        "import sys\nimport genreshift\nfrom genreshift.cli import app\n"
        "try:\n    app(['--help'], prog_name='genreshift')\nexcept SystemExit:\n    pass\n"
        "print('torch loaded:', 'torch' in sys.modules)\n"
        "from genreshift import ConvertOptions, TrackResult\nConvertOptions(genre='rock')\n"
        "print('options:', 'torch' in sys.modules)\n"
        "from genreshift import convert_audio\nprint('after export:', 'torch' in sys.modules)\n"
    )
    out = _python(code)
    assert "Usage: genreshift" in out
    assert "torch loaded: False" in out and "options: False" in out and "after export: True" in out


def test_exports():
    assert set(genreshift.__all__) == {"Converter", "ConvertOptions", "TrackResult", "convert_audio", "__version__"}
    assert {"Converter", "convert_audio"} <= set(dir(genreshift))
    with pytest.raises(AttributeError):
        genreshift.nothing_here  # noqa: B018


def test_convert_audio_is_what_convert_writes(served, tmp_path):
    song = write_tone(tmp_path / "s.wav", 2.0, 44100, 2, subtype="FLOAT")
    data, rate = sf.read(str(song), dtype="float32", always_2d=True)
    conv = Converter(ConvertOptions(genre="rock", output=tmp_path / "o", device="cpu"))
    [result] = conv.convert([song])
    written = sf.read(str(result.output), dtype="float32", always_2d=True)[0].T
    out = conv.convert_audio(data.T, rate)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == data.T.shape
    assert np.array_equal(out, written)  # bit for bit
    tensor = conv.convert_audio(torch.from_numpy(data.T.copy()), rate)
    assert isinstance(tensor, torch.Tensor) and torch.equal(tensor, torch.from_numpy(written))


def test_convert_audio_function_mono(served):
    wave = np.sin(np.arange(30000) / 10).astype(np.float32) * 0.3
    out = convert_audio(wave, 32000, genre="rock", device="cpu")
    assert out.shape == wave.shape and np.isfinite(out).all() and not np.allclose(out, wave, atol=1e-2)


def test_convert_audio_refuses_bad_input_in_one_line(served):
    conv = Converter(ConvertOptions(genre="rock", device="cpu"))
    bad = np.zeros(5000, np.float32)
    bad[100] = np.nan
    with pytest.raises(AudioError, match="contains NaN or infinite samples"):
        conv.convert_audio(bad, 22050)
    with pytest.raises(AudioError, match="contains no audio"):
        conv.convert_audio(np.zeros(0, np.float32), 22050)
    with pytest.raises(ValueError, match="pass its transpose"):
        conv.convert_audio(np.zeros((5000, 2), np.float32), 22050)
    with pytest.raises(ValueError, match="sample_rate"):
        conv.convert_audio(np.zeros(5000, np.float32), 0)


def test_models_resolve_at_once_and_load_once_on_first_use(served, monkeypatch):
    reads, loads = [], []
    entries, load = registry.registry_entries, pretrained.load_translator
    monkeypatch.setattr(registry, "registry_entries", lambda: reads.append(1) or entries())
    monkeypatch.setattr(pretrained, "load_translator", lambda source: loads.append(1) or load(source))
    conv = Converter(ConvertOptions(genre="rock", device="cpu"))
    assert conv.genre == "rock" and conv.source.vocoder == "fast" and conv.source.note == ""
    assert served.requests == [] and loads == []  # nothing fetched to resolve
    wave = np.zeros(3000, np.float32)
    conv.convert_audio(wave, 22050)
    conv.convert_audio(wave, 22050)
    assert conv.sample_rate == 22050 and conv.mel_config.n_mels == 80
    assert isinstance(conv.translator, torch.nn.Module) and conv.vocoder.cpu_batch >= 1
    assert loads == [1] and reads == [1]  # registry.json read once, models loaded once
    with pytest.raises(AttributeError):
        conv.genre = "jazz"  # read-only


def test_progress_is_given_to_the_constructor(served, tmp_path):
    seen = []
    conv = Converter(ConvertOptions(genre="rock", output=tmp_path / "o"), progress=lambda s, r: seen.append((s, r)))
    [result] = conv.convert([write_tone(tmp_path / "a.wav", 1.0)])
    assert any(s > 0 for s, _ in seen) and seen[-1] == (0.0, result)


def test_model_genre_comes_from_the_checkpoint(served, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    best = tmp_path / "runs" / "jazz" / "best.pt"
    best.parent.mkdir(parents=True)
    checkpoint.save(tiny_translator("jazz"), best)
    conv = Converter(ConvertOptions(model=str(best)))
    assert conv.genre == "jazz" and conv.output_root == Path("converted/jazz")
    assert conv.source.translator == str(best) and conv.source.vocoder == "fast"
    song = write_tone(tmp_path / "s.wav", 0.3)
    r = CliRunner().invoke(app, ["convert", str(song), "--model", str(best), "--dry-run"])
    assert r.exit_code == 0 and f"-> {Path('converted/jazz/s.wav')}" in r.output
    r = CliRunner().invoke(app, ["convert", str(song), "--model", str(best), "--to", "rock"])
    assert r.exit_code == 2 and "is a translator to jazz" in r.output


def test_auto_says_when_it_falls_back(served, tmp_path):
    odd = tmp_path / "odd.pt"
    checkpoint.save(tiny_translator("rock", vocoder="hifigan"), odd)
    conv = Converter(ConvertOptions(model=str(odd)))
    assert conv.source.vocoder == "griffinlim"
    song = write_tone(tmp_path / "s.wav", 0.3)
    r = CliRunner().invoke(app, ["convert", str(song), "--model", str(odd), "-o", str(tmp_path / "o"), "--dry-run"])
    notes = [line for line in r.output.splitlines() if line.startswith("note:")]
    assert r.exit_code == 0 and notes == [
        "note: vocoder 'hifigan' (named by the rock translator) is not released; using griffinlim"
    ]


def test_a_vocoder_spec_is_a_path_only_if_it_says_so(served, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("fast").write_bytes(b"not a checkpoint")
    conv = Converter(ConvertOptions(genre="rock", vocoder="fast"))
    assert conv.source.vocoder_entry is not None and conv.source.vocoder_entry.model == "fast"
    assert [pretrained.is_path(s) for s in ["fast", "v.pt", "runs/v", "runs\\v"]] == [False, True, True, True]
    with pytest.raises(pretrained.ModelError, match="unknown vocoder 'hifigan'"):
        Converter(ConvertOptions(genre="rock", vocoder="hifigan"))


def test_the_docs_example_runs(served, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S)
    assert len(blocks) == 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), namespace)
    assert namespace["clip"].shape == namespace["stereo"].shape
    assert (tmp_path / "converted" / "rock" / "a.wav").is_file()
