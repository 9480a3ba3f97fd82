"""End-to-end: the real CLI on generated audio, with tiny weights served from 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from genreshift.cli import app
from helpers import write_tone

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def album(tmp_path) -> Path:
    root = tmp_path / "album"
    write_tone(root / "a.wav", 1.5, 44100, 2)
    write_tone(root / "disc2" / "b.flac", 1.0, 48000, 1)
    write_tone(root / "c.ogg", 1.2, 22050, 2, format="OGG", subtype="VORBIS")
    write_tone(root / ".hidden.wav", 0.5)
    (root / "notes.txt").write_text("not audio")
    return root


def test_convert_folder_of_mixed_formats(served, album, tmp_path):
    out = tmp_path / "out"
    result = run("convert", album, "--to", "rock", "-o", out, "--batch-size", "4")
    assert result.exit_code == 0, result.output
    expected = {
        "a.wav": (44100, 2, "WAV", 1.5),
        "disc2/b.flac": (48000, 1, "FLAC", 1.0),
        "c.ogg": (22050, 2, "OGG", 1.2),
    }
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(expected)
    for rel, (rate, channels, fmt, seconds) in expected.items():
        info = sf.info(str(out / rel))
        assert (info.samplerate, info.channels, info.format) == (rate, channels, fmt)
        assert abs(info.frames - seconds * rate) <= 1
        data, _ = sf.read(str(out / rel))
        assert np.isfinite(data).all() and np.abs(data).max() > 0
    assert "converted" in result.output
    assert not (album / "converted").exists()


def test_inputs_are_never_modified(served, album, tmp_path):
    before = {p: p.read_bytes() for p in album.rglob("*") if p.is_file()}
    assert run("convert", album, "--to", "rock", "-o", tmp_path / "o").exit_code == 0
    assert {p: p.read_bytes() for p in album.rglob("*") if p.is_file()} == before


def test_default_output_folder_and_python_m(served, tmp_path):
    write_tone(tmp_path / "song.wav", 0.5)
    env = {**os.environ}
    proc = subprocess.run(
        [sys.executable, "-m", "genreshift", "convert", "song.wav", "--to", "orchestral", "-q"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "converted" / "orchestral" / "song.wav").is_file()


def test_output_changes_with_the_genre(served, tmp_path):
    song = write_tone(tmp_path / "song.wav", 1.0)
    assert run("convert", song, "--to", "rock", "-o", tmp_path / "r", "--vocoder", "griffinlim").exit_code == 0
    assert run("convert", song, "--to", "orchestral", "-o", tmp_path / "o", "--vocoder", "griffinlim").exit_code == 0
    a, _ = sf.read(str(tmp_path / "r" / "song.wav"))
    b, _ = sf.read(str(tmp_path / "o" / "song.wav"))
    assert a.shape == b.shape and not np.allclose(a, b)


def test_options_format_rate_stereo(served, tmp_path):
    song = write_tone(tmp_path / "s.wav", 1.0, 44100, 2)
    out = tmp_path / "o"
    r = run("convert", song, "--to", "rock", "-o", out, "--format", "flac", "--sample-rate", "16000", "--stereo")
    assert r.exit_code == 0, r.output
    info = sf.info(str(out / "s.flac"))
    assert (info.format, info.samplerate, info.channels, info.frames) == ("FLAC", 16000, 2, 16000)
    left, right = sf.read(str(out / "s.flac"))[0].T
    assert not np.allclose(left, right)  # channels were converted separately


def test_dry_run_lists_and_writes_nothing(served, album, tmp_path):
    out = tmp_path / "o"
    r = run("convert", album, "--to", "rock", "-o", out, "--dry-run")
    assert r.exit_code == 0
    assert f"{album / 'a.wav'} -> {out / 'a.wav'}" in r.output
    assert not out.exists()


def test_skip_existing_resumes(served, album, tmp_path):
    out = tmp_path / "o"
    assert run("convert", album, "--to", "rock", "-o", out).exit_code == 0
    stamp = (out / "a.wav").stat().st_mtime_ns
    (out / "c.ogg").unlink()
    r = run("convert", album, "--to", "rock", "-o", out, "--skip-existing")
    assert r.exit_code == 0
    assert (out / "a.wav").stat().st_mtime_ns == stamp and (out / "c.ogg").is_file()
    assert "skipped" in r.output


# -- bad input: one clear line each, the rest of the batch still converts -------------------


def _bad_files(folder: Path) -> dict[str, str]:
    """file name -> text expected in its error line."""
    (folder / "fake.wav").write_bytes(b"this is not audio at all" * 10)
    (folder / "fake.mp3").write_text("a text file with the wrong name\n" * 10)
    good = write_tone(folder / "trunc.flac", 1.0, format="FLAC").read_bytes()
    (folder / "trunc.flac").write_bytes(good[: len(good) // 3])
    sf.write(folder / "empty.wav", np.zeros((0, 1), np.float32), 22050)
    nan = np.full((2205, 1), np.nan, np.float32)
    sf.write(folder / "nan.wav", nan, 22050, subtype="FLOAT")
    return {"fake.wav": "fake.wav: not a readable audio file", "fake.mp3": "fake.mp3: not a readable audio file",
            "empty.wav": "empty.wav: contains no audio",
            "nan.wav": "nan.wav: contains NaN or infinite samples", "trunc.flac": "trunc.flac"}  # fmt: skip


def test_bad_files_fail_alone(served, tmp_path):
    folder = tmp_path / "in"
    write_tone(folder / "good.wav", 1.0)
    expected = _bad_files(folder)
    out = tmp_path / "o"
    r = run("convert", folder, "--to", "rock", "-o", out)
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    assert (out / "good.wav").is_file()
    for name in ["fake.wav", "fake.mp3", "empty.wav", "nan.wav"]:
        assert expected[name] in r.output
        assert not (out / name).exists()
    # libsndfile's MP3 decoder calls such a file missing; the user is not sent looking for it.
    assert "does not exist" not in r.output
    # A truncated FLAC either decodes what is left or fails with its name: never a crash.
    assert (out / "trunc.flac").is_file() or "trunc.flac" in r.output
    assert not list(out.rglob("*.part"))


@pytest.mark.parametrize(
    "rate,channels,seconds",
    [(8000, 1, 1.0), (192000, 2, 0.5), (22050, 6, 0.6), (44100, 1, 1 / 44100)],
    ids=["8kHz", "192kHz", "6ch", "1-sample"],
)
def test_unusual_audio_converts(served, tmp_path, rate, channels, seconds):
    song = write_tone(tmp_path / "x.wav", seconds, rate, channels)
    r = run("convert", song, "--to", "rock", "-o", tmp_path / "o")
    assert r.exit_code == 0, r.output
    info = sf.info(str(tmp_path / "o" / "x.wav"))
    assert (info.samplerate, info.channels, info.frames) == (rate, channels, max(1, round(seconds * rate)))


def test_silent_audio_converts_and_says_so(served, tmp_path):
    sf.write(tmp_path / "quiet.wav", np.zeros((22050, 1), np.float32), 22050)
    r = run("convert", tmp_path / "quiet.wav", "--to", "rock", "-o", tmp_path / "o")
    assert r.exit_code == 0 and "silent" in r.output
    data, _ = sf.read(str(tmp_path / "o" / "quiet.wav"))
    assert np.isfinite(data).all()


def test_empty_folder(served, tmp_path):
    (tmp_path / "nothing").mkdir()
    r = run("convert", tmp_path / "nothing", "--to", "rock")
    assert r.exit_code == 1 and "nothing: no audio files found" in r.output


def test_unknown_genre_lists_valid_ones(served, tmp_path):
    song = write_tone(tmp_path / "s.wav", 0.2)
    r = run("convert", song, "--to", "polka")
    assert r.exit_code == 2
    assert "unknown genre 'polka'" in r.output and "orchestral, rock" in r.output


def test_output_folder_not_writable(served, tmp_path):
    song = write_tone(tmp_path / "s.wav", 0.2)
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    r = run("convert", song, "--to", "rock", "-o", blocker)
    assert r.exit_code == 1 and "output folder is not writable" in r.output and "Traceback" not in r.output


def test_output_equal_to_input_is_refused(served, tmp_path):
    song = write_tone(tmp_path / "s.wav", 0.3)
    other = write_tone(tmp_path / "sub" / "t.wav", 0.3)
    before = song.read_bytes()
    r = run("convert", song, other, "--to", "rock", "-o", tmp_path)
    assert r.exit_code == 1 and "would overwrite an input" in r.output
    assert song.read_bytes() == before


def test_missing_weights_while_offline(served, tmp_path, monkeypatch):
    monkeypatch.setenv("GENRESHIFT_OFFLINE", "1")
    song = write_tone(tmp_path / "s.wav", 0.2)
    r = run("convert", song, "--to", "rock", "-o", tmp_path / "o")
    assert r.exit_code == 1
    assert "GENRESHIFT_OFFLINE=1" in r.output and "genreshift models pull rock" in r.output
    assert served.requests == []


def test_overlap_must_be_smaller_than_chunk(served, tmp_path):
    r = run("convert", write_tone(tmp_path / "s.wav", 0.2), "--to", "rock", "--overlap", "64", "--chunk-frames", "64")
    assert r.exit_code == 2


def test_unknown_device_is_a_usage_error(served, tmp_path):
    r = run("convert", write_tone(tmp_path / "s.wav", 0.2), "--to", "rock", "--device", "tpu")
    assert r.exit_code == 2 and "unknown device" in r.output or "unsupported device" in r.output


# -- other commands --------------------------------------------------------------------------


def test_version_names_every_bundled_model(monkeypatch):
    import json

    from genreshift import __version__
    from genreshift.registry import bundled_dir

    monkeypatch.delenv("GENRESHIFT_REGISTRY", raising=False)
    r = run("--version")
    assert r.exit_code == 0 and r.output.startswith(f"genreshift {__version__}\n")
    rows = json.loads((bundled_dir() / "registry.json").read_text())["files"]
    assert rows
    for row in rows:  # every released file says its model version and the release it came with
        line = next(line for line in r.output.splitlines() if line.split()[:1] == [row["model"]])
        assert row["version"] in line and row["file"] in line and f"released with {row['package_version']}" in line
        released = tuple(int(n) for n in row["package_version"].split("."))
        assert released <= tuple(int(n) for n in __version__.split(".")) and row["file"].endswith(
            f"-{row['version']}.pt"
        )


def test_version_with_a_broken_registry_still_prints_the_version(monkeypatch, tmp_path):
    (tmp_path / "registry.json").write_text("{")
    monkeypatch.setenv("GENRESHIFT_REGISTRY", str(tmp_path / "registry.json"))
    r = run("--version")
    assert r.exit_code == 0 and "genreshift " in r.output and "unreadable model registry" in r.output


def test_genres_and_models_commands(served, tmp_path):
    r = run("genres")
    assert "rock" in r.output and "orchestral" in r.output
    assert "remote" in run("models", "list").output
    r = run("models", "pull", "rock")
    assert r.exit_code == 0 and "rock-tiny.pt" in r.output
    path = Path(run("models", "path", "rock").output.strip())
    assert path.is_file() and path.parent == tmp_path / "cache"
    assert "cached" in run("models", "verify").output
    path.write_bytes(b"garbage")
    r = run("models", "verify")
    assert r.exit_code == 1 and "corrupt" in r.output
    assert run("models", "pull", "--all").exit_code == 0
    assert run("models", "verify").exit_code == 0
    assert "removed" in run("models", "rm", "rock").output and not path.exists()
    assert run("models", "pull", "nope").exit_code == 2
