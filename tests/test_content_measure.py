"""The content measure of benchmarks/quality.py (benchmarks/content.py) on cases whose answer is
known: a tone and the same tone an octave up keep the content, a different chord does not.

The pitch-class math runs everywhere. The transcriber (basic-pitch on onnxruntime) is the
`benchmark` extra, which .ci/run installs: in CI these tests fail rather than skip without it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import build_weights

BENCH = Path(__file__).parents[1] / "benchmarks"
_spec = importlib.util.spec_from_file_location("benchmark_content", BENCH / "content.py")
content = sys.modules["benchmark_content"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(content)
Note = content.Note

A3, A4, BB_MAJOR = [57], [69], [58, 62, 65]  # B-flat major shares no pitch class with A's harmonics


def held(pitches: list[int], seconds: float = 4.0, amplitude: float = 0.8) -> list:
    return [Note(0.0, seconds, p, amplitude) for p in pitches]


def tone(pitches: list[int], seconds: float = 4.0, rate: int = 22050, gain: float = 1.0) -> np.ndarray:
    """Harmonic tones (4 partials each) with short fades, summed."""
    t = np.arange(int(seconds * rate)) / rate
    hz = [440.0 * 2 ** ((p - 69) / 12) for p in pitches]
    x = sum(0.25 / k * np.sin(2 * np.pi * f * k * t) for f in hz for k in range(1, 5))
    fade = np.minimum(1, t / 0.02) * np.minimum(1, (seconds - t) / 0.05)
    return (gain * x * fade).astype(np.float32)


# -- the math, on hand-made notes ------------------------------------------------------------------


def test_profile_splits_a_note_between_windows_by_duration_times_amplitude():
    prof = content.pitch_class_profiles([Note(1.5, 2.5, 57, 0.5), Note(0.0, 1.0, 60, 1.0)], duration=4.0)
    assert prof.shape == (2, 12)
    assert prof[0, 9] == pytest.approx(0.25) and prof[1, 9] == pytest.approx(0.25)
    assert prof[0, 0] == pytest.approx(1.0) and prof[1, 0] == 0


def test_octave_keeps_the_content_and_a_different_chord_does_not():
    dur = 4.0
    ref = content.pitch_class_profiles(held(A3), dur)
    octave = content.pitch_class_profiles(held(A4, amplitude=0.3), dur)
    chord = content.pitch_class_profiles(held(BB_MAJOR), dur)
    assert content.profile_correlation(ref, octave) == pytest.approx(1.0)
    assert content.profile_correlation(ref, chord) < 0
    # A chord that contains the tone is in between.
    with_a = content.pitch_class_profiles(held([57, 61, 64]), dur)
    assert 0 < content.profile_correlation(ref, with_a) < 1


def test_silence_keeps_nothing_and_silent_input_windows_are_not_judged():
    dur = 4.0
    ref = content.pitch_class_profiles([Note(0.0, 2.0, 57, 0.8)], dur)  # second window silent
    assert content.profile_correlation(ref, content.pitch_class_profiles([], dur)) == 0.0
    # Only the first window counts: an output that matches it scores 1 whatever follows.
    out = content.pitch_class_profiles([Note(0.0, 2.0, 45, 0.5), Note(2.0, 4.0, 60, 0.5)], dur)
    assert content.profile_correlation(ref, out) == pytest.approx(1.0)
    assert content.profile_correlation(content.pitch_class_profiles([], dur), out) is None


def test_windows_and_clips_count_by_the_input_note_mass():
    dur = 4.0
    # A strong A for 2 s, then a weak C; the output keeps the A and loses the C.
    ref = content.pitch_class_profiles([Note(0.0, 2.0, 57, 0.9), Note(2.0, 4.0, 60, 0.1)], dur)
    out = content.pitch_class_profiles([Note(0.0, 2.0, 57, 0.9), Note(2.0, 4.0, 66, 0.9)], dur)
    lost = content.profile_correlation(ref[1:], out[1:])
    assert lost < 0
    # Masses 1.8 and 0.2: the kept window counts nine times the lost one.
    assert content.profile_correlation(ref, out) == pytest.approx(0.9 * 1.0 + 0.1 * lost)
    clips = [{"pc_corr": 1.0, "note_mass": 3.0}, {"pc_corr": 0.0, "note_mass": 1.0},
             {"pc_corr": None, "note_mass": 0.0}]  # fmt: skip
    assert content.pooled(clips, "pc_corr") == pytest.approx(0.75)
    assert content.pooled(clips[2:], "pc_corr") is None


# -- with the transcriber ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def transcriber():
    try:
        return content.Transcriber(threads=1)
    except content.TranscriberMissing as exc:
        if os.environ.get("CI", "").lower() in {"1", "true"}:
            raise  # .ci/run installs the benchmark extra: a skip here would hide a broken install
        pytest.skip(str(exc))


def test_transcriber_hears_the_tone(transcriber):
    notes = transcriber.notes(tone(A3), 22050)
    weight = {}
    for n in notes:
        weight[n.pitch] = weight.get(n.pitch, 0) + (n.end - n.start) * n.amplitude
    assert max(weight, key=weight.get) == 57
    assert sum(n.end - n.start for n in notes if n.pitch == 57) > 3.0


def test_tone_and_octave_up_score_high_against_a_different_chord(transcriber):
    ref = transcriber.notes(tone(A3), 22050)
    octave = content.content_kept(ref, transcriber.notes(tone(A4, gain=0.5), 22050), 4.0)
    chord = content.content_kept(ref, transcriber.notes(tone(BB_MAJOR), 22050), 4.0)
    quieter = content.content_kept(ref, transcriber.notes(tone(A3, gain=0.5), 22050), 4.0)
    assert octave["pc_corr"] > 0.9 and chord["pc_corr"] < 0.2
    assert octave["pc_corr"] - chord["pc_corr"] > 0.8
    # Note F1 is strict about octaves, and the same notes played softer still match.
    assert octave["note_f1"] == 0.0 and chord["note_f1"] == 0.0 and quieter["note_f1"] > 0.9


def test_other_sample_rates_are_resampled(transcriber):
    ref = transcriber.notes(tone(A3), 22050)
    out = transcriber.notes(tone(A3, rate=44100), 44100)
    assert content.content_kept(ref, out, 4.0)["pc_corr"] > 0.9


def _tiny_corpus(root: Path) -> Path:
    """Two genres, each one training and two held-out clips of 3 s tones (distinct names per genre
    are not needed: clips are named by path)."""
    rows = []
    for g, genre in enumerate(["orchestral", "rock"]):
        for i, split in enumerate(["train", "val", "val"]):
            path = f"{genre}/pkg/{split}{i % 2}.flac"
            (root / genre / "pkg").mkdir(parents=True, exist_ok=True)
            sf.write(root / path, tone([57 + 3 * g + 4 * i], seconds=3.0), 22050)
            rows.append({"path": path, "genre": genre, "split": split})
    (root / "manifest.json").write_text(json.dumps(rows))
    return root


def test_quality_content_only_judges_a_translator_checkpoint(transcriber, tmp_path):
    corpus = _tiny_corpus(tmp_path / "corpus")
    weights = tmp_path / "weights"
    env = os.environ | {"GENRESHIFT_REGISTRY": str(build_weights(weights)),
                        "GENRESHIFT_WEIGHTS_URL": weights.as_uri(), "OMP_NUM_THREADS": "1"}  # fmt: skip
    cmd = [sys.executable, str(BENCH / "quality.py"), "--corpus", str(corpus), "--seconds", "3", "--content-only"]
    out = tmp_path / "q.json"
    proc = subprocess.run(cmd + ["--translator", f"rock={weights / 'rock-tiny.pt'}", "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| --to | tracks | pitch-class corr.: vocoder only |" in proc.stdout
    assert "rock: keeps " in proc.stdout and "target >= 90%" in proc.stdout
    row = json.loads(out.read_text())["translation"]["rock"]
    assert list(json.loads(out.read_text())["translation"]) == ["rock"]
    assert row["tracks"] == 2 and row["model"].endswith("rock-tiny.pt")
    for figures in (row["vocoder_only"], row["converted"]):
        assert -1 <= figures["pc_corr"] <= 1 and 0 <= figures["note_f1"] <= 1

    bad = subprocess.run(cmd + ["--translator", "jazz=nowhere.pt"], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "--translator jazz=nowhere.pt" in bad.stderr


def test_quality_prints_the_strength_curve(transcriber, tmp_path):
    """--strengths: S = 1 is the table's conversion itself, S = 0 the vocoder alone through
    convert's path (so near the table's vocoder-only figure, not exactly)."""
    corpus = _tiny_corpus(tmp_path / "corpus")
    weights = tmp_path / "weights"
    env = os.environ | {"GENRESHIFT_REGISTRY": str(build_weights(weights)),
                        "GENRESHIFT_WEIGHTS_URL": weights.as_uri(), "OMP_NUM_THREADS": "1"}  # fmt: skip
    out = tmp_path / "q.json"
    cmd = [sys.executable, str(BENCH / "quality.py"), "--corpus", str(corpus), "--seconds", "3", "--content-only",
           "--translator", f"rock={weights / 'rock-tiny.pt'}", "--strengths", "0,1", "--json", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "The strength curve (convert --strength S)" in proc.stdout
    report = json.loads(out.read_text())
    zero, one = report["strength_curve"]["rock"]
    assert (zero["strength"], one["strength"]) == (0.0, 1.0)
    assert zero["kept"] == pytest.approx(1.0, abs=0.05)
    assert one["kept"] == report["translation"]["rock"]["kept"]

    bad = subprocess.run(cmd[:-2] + ["--strengths", "0,3"], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "--strengths" in bad.stderr
