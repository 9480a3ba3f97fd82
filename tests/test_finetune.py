"""`genreshift finetune`: tiny TraVeLGAN runs on 1-2 s of generated audio, then convert uses them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from genreshift import checkpoint
from genreshift.cli import app
from genreshift.config import TranslatorConfig
from genreshift.train.finetune_losses import join_parts, margin_loss, split_parts, travel_loss
from helpers import write_tone

runner = CliRunner()
TINY = ["--channels", "16", "--blocks", "2", "--kernel-size", "3", "--window-frames", "32", "--disc-channels", "8",
        "--siamese-channels", "8", "--siamese-dim", "8", "--batch-size", "2", "--eval-every", "2", "--save-every", "2",
        "--val-crops", "2"]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path]:
    write_tone(tmp_path / "src" / "a.wav", 1.5)
    write_tone(tmp_path / "src" / "sub" / "b.wav", 1.0, 44100, 2)
    t = np.arange(33075) / 22050
    (tmp_path / "tgt").mkdir()
    sf.write(str(tmp_path / "tgt" / "a.flac"), (0.2 * np.sign(np.sin(2 * np.pi * 330 * t))).astype(np.float32), 22050)
    return tmp_path / "src", tmp_path / "tgt"


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def finetune(folders, name: str, *extra):
    return run("finetune", "--source", folders[0], "--target", folders[1], "--name", name, *TINY, *extra)


def fails_with(result, text: str) -> None:
    assert result.exit_code == 1, result.output
    assert text in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1


def test_finetune_then_convert_by_name(served, folders, tmp_path):
    result = finetune(folders, "mine", "--steps", "3")
    assert result.exit_code == 0, result.output
    assert "val_d_translated" in result.output and "--to mine" in result.output
    model = tmp_path / "home" / "models" / "mine.pt"
    ckpt = checkpoint.load(model)
    assert (ckpt.kind, ckpt.arch, ckpt.genres, ckpt.vocoder) == ("translator", "travelgan", ["mine"], "fast")
    assert ckpt.extra == {}  # the exported model carries no training state
    assert ckpt.meta["steps"] == 3
    assert all(np.isfinite(v) for v in [*ckpt.meta["final_losses"].values(), *ckpt.meta["val"].values()])
    samples = tmp_path / "home" / "runs" / "mine" / "samples"
    expected = {"step_0000002.png", "step_0000002_before.wav", "step_0000002_after.wav"}
    assert expected <= {p.name for p in samples.iterdir()}
    assert "mine" in run("models", "list").output and "mine" in run("genres").output
    song = write_tone(tmp_path / "song.wav", 0.7)
    converted = run("convert", song, "--to", "mine", "-o", tmp_path / "out", "-q")
    assert converted.exit_code == 0, converted.output
    assert sf.info(str(tmp_path / "out" / "song.wav")).frames == round(0.7 * 22050)


def test_paired_and_model_path(folders, tmp_path, monkeypatch):
    empty = tmp_path / "registry.json"
    empty.write_text('{"version": 1, "files": []}')
    monkeypatch.setenv("GENRESHIFT_REGISTRY", str(empty))  # no released vocoder to name
    model = tmp_path / "models" / "x.pt"
    result = finetune(folders, "x", "--steps", "2", "--paired", "--out", model)
    assert result.exit_code == 0, result.output
    assert "paired: 1 of 2 source track(s) matched" in result.output and f"--model {model}" in result.output
    ckpt = checkpoint.load(model)
    assert ckpt.vocoder is None and "paired" in ckpt.meta["final_losses"]  # no released vocoder here
    song = write_tone(tmp_path / "song.wav", 0.5)
    converted = run("convert", song, "--model", model, "-o", tmp_path / "out", "-q")
    assert converted.exit_code == 0, converted.output


def test_resume_continues_exactly(folders, tmp_path):
    assert finetune(folders, "a", "--steps", "4", "-q").exit_code == 0
    assert finetune(folders, "b", "--steps", "2", "-q").exit_code == 0
    resumed = finetune(folders, "b", "--steps", "4", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "at step 2" in resumed.output
    a, b = (checkpoint.load(tmp_path / "home" / "runs" / n / "last.pt") for n in "ab")
    assert b.extra["training"]["step"] == 4
    for key, value in a.state_dict.items():
        torch.testing.assert_close(b.state_dict[key], value)


def test_name_clashing_with_a_builtin_genre(served, folders):
    fails_with(finetune(folders, "rock", "--steps", "1"), "built-in genre")
    assert finetune(folders, "rock", "--steps", "1", "--force", "-q").exit_code == 0


def test_init_from_a_genre(served, folders, tmp_path):
    fails_with(finetune(folders, "r2", "--init", "rock", "--channels", "32"), "channels=16 (asked 32)")
    fails_with(finetune(folders, "r2", "--init", "jazz"), "unknown genre 'jazz'")
    assert finetune(folders, "r2", "--init", "rock", "--steps", "1", "-q").exit_code == 0
    (tmp_path / "bad.pt").write_bytes(b"junk")
    fails_with(finetune(folders, "r3", "--init", tmp_path / "bad.pt"), "not a readable genreshift checkpoint")


def test_bad_inputs_give_one_line(folders, tmp_path):
    src, tgt = folders
    (tmp_path / "empty").mkdir()
    fails_with(finetune((tmp_path / "empty", tgt), "e"), "no audio files found")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.wav").write_bytes(b"RIFF garbage")
    fails_with(finetune((src, tmp_path / "broken"), "e"), "no usable audio")
    write_tone(tmp_path / "short" / "s.wav", 0.2)
    fails_with(finetune((src, tmp_path / "short"), "e"), "less than one training window")
    (tmp_path / "file").write_text("x")
    fails_with(finetune(folders, "e", "--out", tmp_path / "file"), "is a file, not a folder")
    fails_with(finetune(folders, "e", "--run-dir", tmp_path / "file"), "is a file, not a folder")
    fails_with(finetune(folders, "bad/name"), "--name")


def test_resume_problems(folders, tmp_path):
    fails_with(finetune(folders, "m", "--resume"), "no checkpoint to resume")
    assert finetune(folders, "m", "--steps", "1", "-q").exit_code == 0
    fails_with(finetune(folders, "m", "--steps", "1"), "--resume")
    fails_with(finetune(folders, "m", "--steps", "2", "--resume", "--blocks", "3"), "n_blocks=2 (asked 3)")
    fails_with(finetune(folders, "m", "--steps", "2", "--resume", "--disc-channels", "16"), "disc_channels=8")
    (tmp_path / "home" / "runs" / "m" / "last.pt").write_bytes(b"\x00" * 100)
    fails_with(finetune(folders, "m", "--steps", "2", "--resume"), "not a readable genreshift checkpoint")


def test_two_process_gloo_run(folders, tmp_path):
    args = ["finetune", "--source", folders[0], "--target", folders[1], "--name", "ddp", *TINY, "--steps", "2", "-q"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "genreshift"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*cmd, *map(str, args)], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert checkpoint.load(tmp_path / "home" / "models" / "ddp.pt").meta["steps"] == 2


# -- the losses -----------------------------------------------------------------------------


def test_parts_round_trip():
    x = torch.randn(2, 4, 12)
    parts = split_parts(x, 3)
    assert parts.shape == (6, 4, 4)
    torch.testing.assert_close(parts[1], x[0, :, 4:8])
    torch.testing.assert_close(join_parts(parts, 3), x)


def test_travel_and_margin_losses():
    e = torch.randn(6, 8)
    assert travel_loss(e, e).abs() < 1e-6
    assert travel_loss(e, e + 5.0).abs() < 1e-6  # a shift keeps every vector between samples
    assert travel_loss(e, -e) > 1.0  # reversed vectors are far
    assert margin_loss(torch.zeros(4, 8), 2.0) == pytest.approx(4.0)  # collapsed: (2 - 0)^2
    assert margin_loss(torch.eye(4) * 10, 2.0) == 0.0


def test_tiny_config_matches_helpers():
    from helpers import TINY_TRANSLATOR

    assert TINY_TRANSLATOR == TranslatorConfig(channels=16, n_blocks=2, kernel_size=3, window_frames=32)


def test_new_translators_name_the_vocoder_the_release_uses(tmp_path, monkeypatch):
    from genreshift.train.finetune import _released_vocoder

    reg = tmp_path / "r.json"
    row = {"file": "x.pt", "sha256": "0" * 64, "size": 1}
    files = [{**row, "model": "fast", "kind": "vocoder"},
             {**row, "model": "rock", "kind": "translator", "genre": "rock", "vocoder": "griffinlim"}]  # fmt: skip
    reg.write_text(json.dumps({"version": 1, "files": files}))
    monkeypatch.setenv("GENRESHIFT_REGISTRY", str(reg))
    assert _released_vocoder() == "griffinlim"
    reg.write_text(json.dumps({"version": 1, "files": files[:1]}))
    assert _released_vocoder() == "fast"


# -- issue 13: Ctrl-C mid-step, damaged checkpoints, failed runs ------------------------------


def test_resume_after_ctrl_c_in_the_middle_of_a_step_is_exact(folders, tmp_path, monkeypatch):
    import signal

    from genreshift.train import finetune as ft

    # A terminal's Ctrl-C. A test run started in the background by a shell without job control
    # (`pytest &`, `nohup .ci/run &`) inherits SIGINT ignored, and genreshift rightly keeps an
    # ignored SIGINT ignored; this test is about the Ctrl-C a user types.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    assert finetune(folders, "a", "--steps", "5", "-q").exit_code == 0
    real = ft._train_step

    def interrupted_step(r, a, b, pairs):  # Ctrl-C after this step drew its crops, before it learnt
        if r.tally.step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real(r, a, b, pairs)

    monkeypatch.setattr(ft, "_train_step", interrupted_step)
    stopped = finetune(folders, "b", "--steps", "5")
    assert stopped.exit_code == 130 and "interrupted at step 3" in stopped.output, stopped.output
    monkeypatch.setattr(ft, "_train_step", real)
    assert finetune(folders, "b", "--steps", "5", "--resume", "-q").exit_code == 0
    signal.signal(signal.SIGINT, previous)
    a, b = (checkpoint.load(tmp_path / "home" / "runs" / n / "last.pt") for n in "ab")
    for key, value in a.state_dict.items():
        torch.testing.assert_close(b.state_dict[key], value, rtol=0, atol=0)


def test_damaged_init_and_resume_checkpoints_are_one_line(folders, tmp_path):
    from helpers import tiny_translator

    plain = tiny_translator("x").to_plain()
    plain["config"]["n_blocks"] = -1
    torch.save(plain, tmp_path / "neg.pt")
    fails_with(finetune(folders, "n", "--init", tmp_path / "neg.pt"), "not a usable genreshift checkpoint")
    assert finetune(folders, "m", "--steps", "1", "-q").exit_code == 0
    last = tmp_path / "home" / "runs" / "m" / "last.pt"
    data = torch.load(last, weights_only=True)
    data["training"]["discriminator"] = {"nonsense": torch.zeros(1)}
    torch.save(data, last)
    fails_with(finetune(folders, "m", "--steps", "2", "--resume"), "not a usable genreshift checkpoint: training state")
    data["state_dict"] = "weights"
    torch.save(data, last)
    fails_with(finetune(folders, "m", "--steps", "2", "--resume"), "not a usable genreshift checkpoint")


def test_a_failed_run_leaves_no_empty_run_folder(folders, tmp_path):
    (tmp_path / "empty").mkdir()
    fails_with(finetune((tmp_path / "empty", folders[1]), "e"), "no audio files found")
    assert not (tmp_path / "home" / "runs" / "e").exists()
