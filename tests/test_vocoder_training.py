"""`genreshift train-vocoder` and the shared training harness, on tiny models and 1-2 s of audio."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from genreshift import checkpoint
from genreshift.train import loop, samples
from genreshift.cli import app
from genreshift.config import MelConfig
from genreshift.train.data import Clip, Crops, load_clips
from genreshift.vocoder import FastVocoder
from helpers import TINY_FAST, write_tone

runner = CliRunner()
SIZES = {
    "fast": ["--dim", "16", "--intermediate-dim", "32", "--n-blocks", "1"],
    "melgan": ["--ngf", "4", "--n-residual-layers", "1"],
}
TINY = ["--disc-channels", "4", "--segment-frames", "16", "--batch-size", "2", "--gan-start", "1", "--eval-every", "2",
        "--save-every", "2", "--val-segments", "2"]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def music(tmp_path) -> Path:
    write_tone(tmp_path / "music" / "a.wav", 1.5)
    write_tone(tmp_path / "music" / "sub" / "b.flac", 1.0, 44100, 2)
    return tmp_path / "music"


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def train(music: Path, out: Path, *extra, arch: str = "fast"):
    args = ["train-vocoder", "--audio", music, "--arch", arch, "--name", "voc", "--out", out]
    return run(*args, *SIZES[arch], *TINY, *extra)


def fails_with(result, text: str) -> None:
    assert result.exit_code == 1, result.output
    assert text in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1


@pytest.mark.parametrize("arch", ["fast", "melgan"])
def test_trains_exports_and_convert_uses_it(served, music, tmp_path, arch):
    out = tmp_path / "run"
    result = train(music, out, "--steps", "3", arch=arch)
    assert result.exit_code == 0, result.output
    assert "val_mel_l1" in result.output and "vocoder saved to" in result.output
    ckpt = checkpoint.load(out / "voc.pt")
    assert (ckpt.kind, ckpt.arch, ckpt.extra, ckpt.mel) == ("vocoder", arch, {}, MelConfig())
    assert ckpt.meta["steps"] == 3 and ckpt.meta["wall_seconds"] > 0
    assert all(np.isfinite(v) for v in [*ckpt.meta["final_losses"].values(), *ckpt.meta["val"].values()])
    assert {"adv", "fm", "d", "mel", "stft"} <= set(ckpt.meta["final_losses"])  # the GAN part ran
    assert checkpoint.load(out / "last.pt").extra["training"]["step"] == 3
    assert (out / "best.pt").is_file()
    assert (out / "samples" / "step_0000002.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    song = write_tone(tmp_path / "song.wav", 0.5)
    converted = run("convert", song, "--to", "rock", "--vocoder", out / "voc.pt", "-o", tmp_path / "c", "-q")
    assert converted.exit_code == 0, converted.output
    assert sf.info(str(tmp_path / "c" / "song.wav")).frames == 11025


def test_resume_continues_exactly(music, tmp_path):
    assert train(music, tmp_path / "straight", "--steps", "4", "-q").exit_code == 0
    assert train(music, tmp_path / "split", "--steps", "2", "-q").exit_code == 0
    resumed = train(music, tmp_path / "split", "--steps", "4", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "at step 2" in resumed.output
    a, b = (checkpoint.load(tmp_path / d / "last.pt") for d in ("straight", "split"))
    assert b.extra["training"]["step"] == 4
    for key, value in a.state_dict.items():
        torch.testing.assert_close(b.state_dict[key], value)


def test_ctrl_c_saves_then_exits(music, tmp_path, monkeypatch):
    from genreshift.train import vocoder as vocoder_training

    real_step = vocoder_training._train_step

    def step(r, wave):
        if r.tally.step == 2:
            raise KeyboardInterrupt
        return real_step(r, wave)

    monkeypatch.setattr(vocoder_training, "_train_step", step)
    result = train(music, tmp_path / "r", "--steps", "10", "--save-every", "100", "--eval-every", "100")
    assert result.exit_code == 130 and "interrupted at step 2" in result.output and "Traceback" not in result.output
    assert checkpoint.load(tmp_path / "r" / "last.pt").extra["training"]["step"] == 2
    assert checkpoint.load(tmp_path / "r" / "voc.pt").meta["steps"] == 2


def test_sigterm_saves_then_exits_143_as_convert_does(music, tmp_path, monkeypatch):
    import os
    import signal

    from genreshift.train import vocoder as vocoder_training

    real_step = vocoder_training._train_step

    def step(r, wave):
        if r.tally.step == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # a job scheduler stopping the run
        return real_step(r, wave)

    monkeypatch.setattr(vocoder_training, "_train_step", step)
    result = train(music, tmp_path / "r", "--steps", "10", "--save-every", "100", "--eval-every", "100")
    assert result.exit_code == 143 and "interrupted at step 2" in result.output, result.output
    assert checkpoint.load(tmp_path / "r" / "last.pt").extra["training"]["step"] == 2
    monkeypatch.setattr(vocoder_training, "_train_step", real_step)  # Ctrl-C after it is 130 again
    test_ctrl_c_saves_then_exits(music, tmp_path / "again", monkeypatch)


def test_existing_run_needs_resume_or_force(music, tmp_path):
    assert train(music, tmp_path / "r", "--steps", "1", "-q").exit_code == 0
    fails_with(train(music, tmp_path / "r", "--steps", "1"), "--resume")
    assert train(music, tmp_path / "r", "--steps", "1", "--force", "-q").exit_code == 0


def test_resume_with_other_settings_or_arch_is_refused(music, tmp_path):
    assert train(music, tmp_path / "r", "--steps", "1", "-q").exit_code == 0
    fails_with(train(music, tmp_path / "r", "--steps", "2", "--resume", "--dim", "32"), "dim=16 (asked 32)")
    fails_with(train(music, tmp_path / "r", "--steps", "2", "--resume", "--disc-channels", "8"), "disc_channels")
    fails_with(train(music, tmp_path / "r", "--steps", "2", "--resume", arch="melgan"), "not --arch melgan")


def test_corrupt_or_missing_checkpoint(music, tmp_path):
    fails_with(train(music, tmp_path / "r", "--resume"), "no checkpoint to resume")
    assert not (tmp_path / "r").exists()  # a failed run leaves no empty run folder
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "last.pt").write_bytes(b"not a checkpoint")
    fails_with(train(music, tmp_path / "r", "--resume"), "not a readable genreshift checkpoint")


def test_bad_inputs_give_one_line(music, tmp_path):
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "notes.txt").write_text("x")
    fails_with(train(tmp_path / "none", tmp_path / "r1"), "no audio files found")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.wav").write_bytes(b"RIFF garbage")
    fails_with(train(tmp_path / "broken", tmp_path / "r2"), "no usable audio")
    write_tone(tmp_path / "short" / "s.wav", 0.1)
    fails_with(train(tmp_path / "short", tmp_path / "r3"), "less than one training window")
    sf.write(str(tmp_path / "silent.wav"), np.zeros(22050, np.float32), 22050)
    fails_with(train(tmp_path / "silent.wav", tmp_path / "r4"), "non-silent")
    (tmp_path / "file").write_text("x")
    fails_with(train(music, tmp_path / "file"), "is a file, not a folder")
    fails_with(train(music, tmp_path / "r5", "--ngf", "8"), "ngf")


def test_two_process_gloo_run(music, tmp_path):
    args = ["train-vocoder", "--audio", music, "--arch", "fast", "--name", "voc", "--out", tmp_path / "ddp"]
    args += [*SIZES["fast"], *TINY, "--steps", "2", "-q"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "genreshift"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*cmd, *map(str, args)], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert checkpoint.load(tmp_path / "ddp" / "voc.pt").meta["steps"] == 2


# -- the shared harness ---------------------------------------------------------------------


def _clip(loudness: list[float], frames_data=None) -> Clip:
    n = len(loudness)
    data = np.arange(n, dtype=np.float32)[None].repeat(2, 0) if frames_data is None else frames_data
    return Clip(Path("x.wav"), Path("x.wav"), data, np.array(loudness, np.float32))


def test_crops_skip_silence_and_hold_out_validation():
    loud = [-20.0] * 200 + [-100.0] * 200 + [-20.0] * 200
    crops = Crops([_clip(loud)], 20, 1, val_count=3, seed=0, rank=0, silence_db=-60, label="x", frame_seconds=0.01)
    assert not crops.overlapping and len(crops.val_starts) == 3
    held = {f for _, s in crops.val_starts for f in range(s, s + 20)}
    for start in crops.train[:, 1]:
        window = range(start, start + 20)
        assert not held & set(window)
        assert sum(loud[f] > -60 for f in window) >= 10  # mostly not silent
    batch = crops.batch(5)
    assert batch.shape == (5, 2, 20) and torch.all(batch[:, 0, 1:] - batch[:, 0, :-1] == 1)  # contiguous crops
    other_rank = Crops([_clip(loud)], 20, 1, 3, 0, 1, -60, "x", 0.01)
    assert other_rank.val_starts == crops.val_starts and not torch.equal(other_rank.batch(5), crops.batch(5))


def test_crops_refuse_too_little_audio():
    with pytest.raises(loop.TrainingError, match="less than one training window"):
        Crops([_clip([-20.0] * 10)], 20, 1, 2, 0, 0, -60, "tiny", 0.01)


def test_mel_cache_is_reused(music, tmp_path):
    said = []
    first = load_clips(music, "mel", MelConfig(), tmp_path / "cache", None, True, said.append)
    files = sorted((tmp_path / "cache").iterdir())
    assert len(files) == 4 and not said
    again = load_clips(music, "mel", MelConfig(), tmp_path / "cache", None, False, said.append)
    assert isinstance(again[0].data, np.memmap)
    np.testing.assert_array_equal(first[0].data, again[0].data)
    assert first[0].data.shape == (80, len(first[0].loudness))


def test_long_tracks_get_the_same_mel_in_blocks(monkeypatch):
    from genreshift import mel
    from genreshift.train import data as training_data

    wave = torch.randn(256 * 300) * 0.1
    whole = mel.log_mel(wave, MelConfig())
    monkeypatch.setattr(training_data, "MEL_BLOCK", 64)
    torch.testing.assert_close(training_data._long_log_mel(wave, MelConfig()), whole, atol=1e-5, rtol=1e-5)


def test_spectrogram_png_is_valid():
    png = samples.spectrogram_png([np.full((80, 50), -5.0), np.full((80, 50), 1.5)])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (50, 162)
    idat = png[png.index(b"IDAT") + 4 : png.index(b"IEND") - 8]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * 3)
    assert rows[0, 1:4].tolist() == [0, 0, 4] and rows[-1, 1:4].tolist() == [252, 253, 191]


def test_init_continues_from_a_release_file(music, tmp_path):
    """--init takes a vocoder's weights (no optimizer state, as in a release file)."""
    assert train(music, tmp_path / "first", "--steps", "2").exit_code == 0
    release = tmp_path / "release.pt"
    ckpt = checkpoint.load(tmp_path / "first" / "voc.pt")
    ckpt.extra = {}
    checkpoint.save(ckpt, release, half=True)
    args = ["train-vocoder", "--audio", music, "--arch", "fast", "--name", "voc", "--out", tmp_path / "second"]
    r = run(*args, *TINY, "--steps", "1", "--init", release)
    assert r.exit_code == 0, r.output
    second = checkpoint.load(tmp_path / "second" / "voc.pt")
    assert second.config == ckpt.config  # sizes came from --init
    assert (second.meta["steps"], second.meta["init_steps"]) == (1, 2)  # the weights' history is kept
    assert run(*args, *TINY, "--steps", "2", "--resume").exit_code == 0
    assert checkpoint.load(tmp_path / "second" / "voc.pt").meta["init_steps"] == 2
    fails_with(run(*args, *TINY, "--steps", "1", "--init", release, "--force", "--arch", "melgan"), "not --arch melgan")


def test_new_fast_vocoders_get_the_v2_settings_and_magnitude_loss(music, tmp_path):
    assert train(music, tmp_path / "run", "--steps", "2", "--gan-start", "100").exit_code == 0
    ckpt = checkpoint.load(tmp_path / "run" / "voc.pt")
    assert (ckpt.config.magnitude_prior, ckpt.config.refine_iters, ckpt.config.mel_iters) == (True, 8, 4)
    assert set(ckpt.meta["final_losses"]) == {"magnitude", "mel", "stft"}


def test_init_from_a_v1_vocoder_keeps_it_v1_but_may_change_refinement(music, tmp_path):
    v1 = checkpoint.Checkpoint("vocoder", "fast", TINY_FAST, MelConfig(), FastVocoder(TINY_FAST).state_dict())
    checkpoint.save(v1, tmp_path / "v1.pt", half=True)
    args = ["train-vocoder", "--audio", music, "--arch", "fast", "--name", "voc", "--out", tmp_path / "run"]
    r = run(*args, *TINY, "--steps", "1", "--init", tmp_path / "v1.pt", "--refine-iters", "3")
    assert r.exit_code == 0, r.output
    cfg = checkpoint.load(tmp_path / "run" / "voc.pt").config
    assert (cfg.magnitude_prior, cfg.refine_iters, cfg.mel_iters) == (False, 3, 0)
    refused = run(*args, *TINY, "--steps", "1", "--init", tmp_path / "v1.pt", "--magnitude-prior", "--force")
    fails_with(refused, "magnitude_prior=False (asked True)")


def test_magnitude_loss_is_zero_only_for_the_input_magnitude():
    from genreshift.train.vocoder import magnitude_loss

    target = torch.rand(2, 513, 10) + 0.1
    assert float(magnitude_loss(target, target)) == 0
    assert float(magnitude_loss(target * 2, target)) > 0.5 + 1.0  # spectral convergence 1 + log 2


def test_refinement_in_training_is_what_inference_puts_out_and_passes_gradients():
    """refine=True runs the config's Griffin-Lim iterations in train mode too: the output is
    the eval-mode output of the same weights, not the plain iSTFT, and every weight of the
    net gets a finite gradient through the iterations."""
    from dataclasses import replace

    torch.manual_seed(0)
    cfg = replace(TINY_FAST, phase="integrated", magnitude_prior=True, refine_iters=1, mel_iters=1)
    net = FastVocoder(cfg)
    torch.nn.init.normal_(net.head.weight, std=0.02)  # zero at the priors: nothing would reach the blocks
    mel = torch.randn(2, cfg.n_mels, 24) * 0.5 - 3
    with torch.no_grad():
        eval_out = net.eval()(mel)
        net.train()
        plain, refined = net(mel), net(mel, refine=True)
    assert torch.allclose(refined, eval_out, atol=1e-5)
    assert (refined - plain).abs().max() > 1e-3
    loss = net(mel, refine=True).abs().mean()
    loss.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert net.blocks[0].pwconv1.weight.grad.abs().sum() > 0
    # validation judges the same output: refined with --train-refinement, plain without
    from genreshift.mel import log_mel
    from genreshift.train.vocoder import evaluate

    val = torch.randn(2, 24 * 256) * 0.1
    _, refined_val = evaluate(net, val, MelConfig(), 2, refine=True)
    _, plain_val = evaluate(net, val, MelConfig(), 2)
    with torch.no_grad():
        assert torch.allclose(refined_val, net.eval()(log_mel(val, MelConfig())), atol=1e-5)
    assert not torch.allclose(refined_val, plain_val, atol=1e-3)


def test_train_refinement_flag_trains_through_the_iterations(music, tmp_path):
    r = train(music, tmp_path / "run", "--steps", "2", "--gan-start", "100", "--refine-iters", "1", "--mel-iters", "1",
              "--train-refinement", "--log-every", "1")  # fmt: skip
    assert r.exit_code == 0, r.output
    last = checkpoint.load(tmp_path / "run" / "last.pt")
    assert last.extra["training"]["hparams"]["train_refinement"] is True
    assert all(np.isfinite(v) for v in last.meta["final_losses"].values())
    fails_with(train(music, tmp_path / "bad", "--train-refinement", "--consistency-weight", "1"), "--train-refinement")


def test_the_low_band_loss_hears_below_4_khz_only():
    """--low-band-weight's term: a tone added at 1 kHz moves it, one at 7 kHz (same level)
    hardly does (window leakage only), and the output's own signal scores zero."""
    from genreshift.train.vocoder import low_band_loss

    torch.manual_seed(0)
    t = torch.arange(22050) / 22050
    y = (torch.sin(2 * torch.pi * 440 * t) + 0.1 * torch.randn(22050))[None]
    low = y + 0.5 * torch.sin(2 * torch.pi * 1000 * t)
    high = y + 0.5 * torch.sin(2 * torch.pi * 7000 * t)
    assert float(low_band_loss(y, y, 22050)) == 0.0
    assert float(low_band_loss(low, y, 22050)) > 10 * float(low_band_loss(high, y, 22050)) > 0
