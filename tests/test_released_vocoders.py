"""The vocoders the package ships: fast v3 is the default, fast v2 still loads by name and by file.

These load the real bundled files (genreshift/weights/), offline, as a new user's first
`convert` does; the rest of the suite runs on tiny random weights.
"""

from __future__ import annotations

import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from genreshift import ConvertOptions, Converter, checkpoint, pretrained, registry
from genreshift.cli import app
from helpers import write_tone

RELEASED = {"fast": ("fast-v3.pt", "v3", 2, 2), "fast-v2": ("fast-v2.pt", "v2", 8, 4)}


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("GENRESHIFT_OFFLINE", "1")  # bundled copies only: a test never downloads


@pytest.mark.parametrize("name", RELEASED)
def test_a_released_vocoder_loads_its_own_file_with_its_own_iterations(offline, name):
    file, version, refine, hold_mel = RELEASED[name]
    source = pretrained.resolve("rock", vocoder=name)
    assert source.vocoder_entry.file == file and source.vocoder_entry.version == version
    translator = pretrained.load_translator(source)
    model = pretrained.load_vocoder(source, translator.mel, torch.device("cpu"))
    assert (model.cfg.refine_iters, model.cfg.mel_iters) == (refine, hold_mel)
    stored = checkpoint.load(registry.bundled_dir() / file, released=True).state_dict
    loaded = model.state_dict()
    assert stored and set(stored) <= set(loaded)
    for key, tensor in stored.items():  # the weights are the file's (fp16 in the file, fp32 here)
        assert torch.equal(loaded[key], tensor.float()), key


def test_convert_uses_fast_v3_by_default_and_fast_v2_when_asked(offline, tmp_path):
    write_tone(tmp_path / "in" / "a.wav", 3.0)
    default = Converter(ConvertOptions(genre="rock", device="cpu"))
    assert default.source.vocoder == "fast" and default.source.vocoder_entry.file == "fast-v3.pt"
    outputs = []
    for args in ([], ["--vocoder", "fast-v2"], ["--vocoder", str(registry.bundled_dir() / "fast-v2.pt")]):
        out = tmp_path / f"out{len(outputs)}"
        r = CliRunner().invoke(app, ["convert", str(tmp_path / "in"), "--to", "rock", "--output", str(out), *args])
        assert r.exit_code == 0, r.output
        audio, rate = sf.read(out / "a.wav", dtype="float32")
        assert rate == 22050 and abs(audio).max() > 0.01
        outputs.append(torch.from_numpy(audio))
    v3, v2_by_name, v2_by_file = outputs
    assert torch.equal(v2_by_name, v2_by_file)  # the same file either way
    assert not torch.allclose(v3, v2_by_name, atol=1e-3)  # and not the default's output
