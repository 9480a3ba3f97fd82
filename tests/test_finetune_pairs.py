"""`finetune --paired` on a tiny real-structured case (issue 21): notes with rests between
them, rendered two ways, so crops span silence and onsets as in real music. The run must
beat where it starts (the closed-form affine equaliser), keep its best step by the held-out
figure, and say so when it ends worse than it started."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from genreshift import checkpoint
from genreshift.cli import app

RATE = 22050
# (Hz, start s, length s): two or three notes per piece, with rests between and after them.
PIECES = {
    "a": [(220, 0.1, 0.5), (330, 0.9, 0.4), (220, 1.6, 0.3)],
    "b": [(262, 0.0, 0.3), (392, 0.6, 0.6), (262, 1.5, 0.4)],
    "c": [(294, 0.2, 0.4), (440, 1.0, 0.5)],
}

pytestmark = pytest.mark.usefixtures("one_thread")


def render(notes, instrument: str, seconds: float = 2.2) -> np.ndarray:
    """ "piano": a sine and its octave, decaying; "guitar": a square wave at half the level,
    sustained: the same notes and onsets, another timbre and envelope."""
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.zeros_like(t)
    for hz, start, length in notes:
        on = (t >= start) & (t < start + length)
        tt = t[on] - start
        if instrument == "piano":
            out[on] += 0.3 * (np.sin(2 * np.pi * hz * tt) + 0.3 * np.sin(4 * np.pi * hz * tt)) * np.exp(-3 * tt)
        else:
            out[on] += 0.15 * np.sign(np.sin(2 * np.pi * hz * tt)) * np.minimum(1, 20 * tt) * np.exp(-0.5 * tt)
    return out.astype(np.float32)


@pytest.fixture
def pairs(tmp_path) -> tuple[Path, Path]:
    for side, instrument in (("src", "piano"), ("tgt", "guitar")):
        (tmp_path / side).mkdir()
        for name, notes in PIECES.items():
            sf.write(str(tmp_path / side / f"{name}.wav"), render(notes, instrument), RATE)
    return tmp_path / "src", tmp_path / "tgt"


def finetune(pairs, root: Path, *extra):
    args = ["finetune", "--paired", "--source", pairs[0], "--target", pairs[1], "--name", "p", "--out", root / "p.pt",
            "--run-dir", root / "run", "--channels", "16", "--blocks", "2", "--kernel-size", "3", "--window-frames",
            "24", "--batch-size", "4", "--val-crops", "4", "--eval-every", "20", "--save-every", "1000", *extra]  # fmt: skip
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def held_out(root: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (root / "run" / "log.jsonl").read_text().splitlines()]
    return [(r["step"], r["val_paired"]) for r in rows if "val_paired" in r]


def test_200_steps_end_below_the_closed_form_affine_equaliser(pairs, tmp_path):
    """A new paired G starts as its colour map fitted in closed form (the per-bin affine
    equaliser of the training pairs), and it is judged before its first step: that is the
    figure to beat, on held-out crops."""
    result = finetune(pairs, tmp_path, "--steps", "200")
    assert result.exit_code == 0, result.output
    figures = held_out(tmp_path)
    (first_step, start), (last_step, last) = figures[0], figures[-1]
    assert (first_step, last_step) == (0, 200)
    assert last < 0.8 * start, figures
    assert "warning:" not in result.output


def test_keeps_the_best_step_and_says_so_when_it_ends_worse(pairs, tmp_path):
    """A learning rate far too high makes the run diverge: the model file is the best step's
    (here the start), the output says which step it kept, and its last line warns."""
    result = finetune(pairs, tmp_path, "--steps", "40", "--lr", "0.3")
    assert result.exit_code == 0, result.output
    figures = held_out(tmp_path)
    best_step, best = min(figures, key=lambda f: f[1])
    assert figures[-1][1] > figures[0][1]  # it did diverge
    lines = result.output.strip().splitlines()
    assert f"kept step {best_step}, the lowest held-out val_paired: {best:.4f}" in result.output
    assert lines[-1].startswith("warning: held-out val_paired ended worse than before training")
    assert f"step {best_step}'s" in lines[-1]
    model = checkpoint.load(tmp_path / "p.pt")
    saved_best = checkpoint.load(tmp_path / "run" / "best.pt")
    assert model.meta["steps"] == best_step and model.meta["val"]["val_paired"] == pytest.approx(best)
    for key, value in saved_best.state_dict.items():
        torch.testing.assert_close(model.state_dict[key], value)
    last = checkpoint.load(tmp_path / "run" / "last.pt")
    state = last.extra["training"]
    assert state["step"] == 40 and state["best_step"] == best_step and state["first"] == pytest.approx(figures[0][1])

    quiet = finetune(pairs, tmp_path / "q", "--steps", "40", "--lr", "0.3", "-q")
    assert quiet.output.strip().splitlines()[-1].startswith("warning: held-out val_paired ended worse")


def test_resume_remembers_the_start_and_the_best(pairs, tmp_path):
    assert finetune(pairs, tmp_path, "--steps", "20", "--lr", "0.3", "-q").exit_code == 0
    resumed = finetune(pairs, tmp_path, "--steps", "40", "--lr", "0.3", "--resume")
    assert resumed.exit_code == 0, resumed.output
    figures = held_out(tmp_path)
    assert [s for s, _ in figures].count(0) == 1  # the start is judged once, not again on resume
    best_step, _ = min(figures, key=lambda f: f[1])
    assert f"kept step {best_step}," in resumed.output
    assert resumed.output.strip().splitlines()[-1].startswith("warning:")


def test_convert_keeps_the_level_change_a_paired_model_learned(pairs, tmp_path):
    """The pairs' target is at another level than the source; levelling to the input would
    undo what the pairs taught, so a paired model's default is --no-level."""
    assert finetune(pairs, tmp_path, "--steps", "20", "-q").exit_code == 0
    song = pairs[0] / "a.wav"
    outputs = {}
    for label, flags in (("default", []), ("no-level", ["--no-level"]), ("level", ["--level"])):
        out = tmp_path / label
        args = ["convert", str(song), "--model", str(tmp_path / "p.pt"), "-o", str(out), "-q"]
        result = CliRunner().invoke(app, args + flags)
        assert result.exit_code == 0, result.output
        outputs[label] = sf.read(str(out / "a.wav"), dtype="float32")[0]
    np.testing.assert_array_equal(outputs["default"], outputs["no-level"])
    rms = {k: float(np.sqrt(np.mean(v**2))) for k, v in outputs.items()}
    source_rms = float(np.sqrt(np.mean(sf.read(str(song), dtype="float32")[0] ** 2)))
    assert abs(rms["level"] - source_rms) < abs(rms["no-level"] - source_rms), (rms, source_rms)


def test_the_recipe_does_not_blow_up_at_30x_its_learning_rate(pairs, tmp_path):
    """Issue 21's divergence was Adam with the GAN's beta1 = 0.5 in a supervised recipe: a
    gradient spike then moves the weights by up to 16 learning rates in one step, and the
    training loss jumped from 0.2 to 500,000 within 100 steps (docs/training.md). With
    --beta1 0.5 this case peaked at a training loss of 445 (measured); the recipe's 0.9 must
    stay near its start, 30 times above its learning rate."""
    result = finetune(pairs, tmp_path, "--steps", "300", "--lr", "3e-2", "--log-every", "1", "--eval-every", "50")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["paired"] for r in rows if "paired" in r]
    assert len(losses) == 300 and max(losses) < 5.0, max(losses)
