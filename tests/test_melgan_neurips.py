"""--vocoder with a melgan-neurips generator file (a bare state_dict), and the honest --vocoder list."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from genreshift import checkpoint
from genreshift.cli import app
from genreshift.cli_options import vocoder_help
from genreshift.config import MelConfig, MelGANConfig
from genreshift.vocoder import MelGAN
from helpers import registry_row, write_tone

runner = CliRunner()
SMALL = MelGANConfig(ngf=4, n_residual_layers=2)


def _neurips_file(path: Path, cfg: MelGANConfig = SMALL, edit=None) -> Path:
    """What melgan-neurips writes: ``torch.save(netG.state_dict(), path)``, nothing else."""
    torch.manual_seed(0)
    state = MelGAN(cfg).state_dict()
    if edit:
        edit(state)
    torch.save(state, path)
    return path


def _one_error_line(result, text: str) -> None:
    assert result.exit_code == 1, result.output
    assert text in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1


@pytest.mark.parametrize("cfg", [SMALL, MelGANConfig()])
def test_a_bare_state_dict_loads_as_a_melgan_vocoder(tmp_path, cfg):
    ckpt = checkpoint.load(_neurips_file(tmp_path / "best_netG.pt", cfg))
    assert (ckpt.kind, ckpt.arch, ckpt.config, ckpt.mel) == ("vocoder", "melgan", cfg, MelConfig())
    torch.manual_seed(0)
    reference = MelGAN(cfg).eval()
    mel = torch.randn(1, 80, 12) - 3
    with torch.inference_mode():
        assert torch.equal(ckpt.build()(mel), reference(mel))


def test_other_ratios_are_read_from_the_shapes(tmp_path):
    cfg = MelGANConfig(ngf=4, ratios=(4, 4, 4, 4), n_residual_layers=1)
    assert checkpoint.load(_neurips_file(tmp_path / "g.pt", cfg)).config == cfg


@pytest.mark.parametrize(
    "cfg,edit,reason",
    [
        (SMALL, lambda s: s.pop("model.4.block.2.bias"), "keys differ"),
        (SMALL, lambda s: s.__setitem__("model.4.shortcut.bias", torch.zeros(3)), "has shape (3,)"),
        (MelGANConfig(ngf=4, ratios=(8, 8, 2), n_residual_layers=1), None, "makes 128 samples"),
        (SMALL, lambda s: [s.pop(k) for k in list(s) if "block" in k and not k.startswith("model.4.")], "residual"),
    ],
)
def test_a_wrong_generator_is_one_clear_error(tmp_path, cfg, edit, reason):
    path = _neurips_file(tmp_path / "g.pt", cfg, edit)
    with pytest.raises(
        checkpoint.CheckpointError, match=f"g.pt: looks like a melgan-neurips generator, but .*{re.escape(reason)}"
    ):
        checkpoint.load(path)


class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickled_object_is_refused_without_running_it(tmp_path):
    evil = _Evil()
    evil.marker = str(tmp_path / "ran")
    torch.save({"model.1.weight_v": evil}, tmp_path / "evil.pt")
    with pytest.raises(checkpoint.CheckpointError, match="evil.pt: not a readable"):
        checkpoint.load(tmp_path / "evil.pt")
    assert not (tmp_path / "ran").exists()  # weights_only=True: nothing in the file ran


def test_convert_with_a_melgan_neurips_file(served, tmp_path):
    write_tone(tmp_path / "in" / "a.wav", 1.0)
    netg = _neurips_file(tmp_path / "best_netG.pt")
    args = ["convert", str(tmp_path / "in"), "--to", "rock", "-o", str(tmp_path / "out"), "-q"]
    r = runner.invoke(app, [*args, "--vocoder", str(netg)])
    assert r.exit_code == 0, r.output
    audio, rate = sf.read(tmp_path / "out" / "a.wav")
    assert rate == 22050 and len(audio) == 22050
    garbage = tmp_path / "notes.pt"
    torch.save({"model.1.weight_v": torch.zeros(2)}, garbage)
    _one_error_line(runner.invoke(app, [*args, "--vocoder", str(garbage)]), "notes.pt: looks like a melgan-neurips")


def test_vocoder_melgan_is_refused_in_one_line_while_none_is_released(served, tmp_path):
    write_tone(tmp_path / "in" / "a.wav", 1.0)
    r = runner.invoke(
        app, ["convert", str(tmp_path / "in"), "--to", "rock", "-o", str(tmp_path / "out"), "--vocoder", "melgan"]
    )
    _one_error_line(r, "no MelGAN vocoder is released; pass a MelGAN generator file instead")


def _listed(text: str) -> list[str]:
    return text.split(", or a vocoder")[0].split(", ")


def test_help_lists_only_released_vocoders(tmp_path, monkeypatch):
    assert _listed(vocoder_help()) == ["auto", "fast", "fast-v2", "griffinlim"]  # the bundled registry
    weights = tmp_path / "w"
    weights.mkdir()
    checkpoint.save(checkpoint.Checkpoint("vocoder", "melgan", SMALL, MelConfig(), MelGAN(SMALL).state_dict()),
                    weights / "melgan-v9.pt")  # fmt: skip
    rows = [registry_row(weights / "melgan-v9.pt", "melgan", "vocoder")]
    (weights / "registry.json").write_text(json.dumps({"version": 1, "files": rows}))
    monkeypatch.setenv("GENRESHIFT_REGISTRY", str(weights / "registry.json"))
    assert _listed(vocoder_help()) == ["auto", "melgan", "griffinlim"]


def test_usage_doc_lists_what_the_help_lists():
    doc = (Path(__file__).parents[1] / "docs" / "usage.md").read_text()
    row = next(line for line in doc.splitlines() if line.startswith("| `--vocoder"))
    named = re.findall(r"`([a-z][a-z0-9-]*)`", row.split("|")[3].split(", or")[0])
    assert named == _listed(vocoder_help())


@pytest.mark.usefixtures("one_thread")
def test_train_vocoder_starts_from_a_melgan_neurips_file(tmp_path):
    write_tone(tmp_path / "music" / "a.wav", 1.5)
    netg = _neurips_file(tmp_path / "best_netG.pt")
    r = runner.invoke(app, ["train-vocoder", "--audio", str(tmp_path / "music"), "--arch", "melgan", "--name", "m",
                            "--out", str(tmp_path / "run"), "--init", str(netg), "--steps", "1", "--batch-size", "2",
                            "--segment-frames", "16", "--gan-start", "100", "--val-segments", "2", "-q"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert checkpoint.load(tmp_path / "run" / "m.pt").config == SMALL
