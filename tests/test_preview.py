"""convert --preview SECONDS: an excerpt of each track (its loudest stretch, or from
--preview-start), converted into NAME.preview.EXT."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from genreshift import Converter, ConvertOptions, preview
from genreshift.audio import probe
from genreshift.cli import app
from helpers import write_tone

runner = CliRunner()
RATE = 22050
BURST = (12.0, 15.0)  # seconds: where the burst track is loud


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def burst_track(path: Path, seconds: float = 20.0, rate: int = RATE, channels: int = 1) -> Path:
    """A quiet hum with a loud burst (34 dB louder) over BURST."""
    t = np.arange(round(seconds * rate)) / rate
    rng = np.random.default_rng(1)
    wave = 0.01 * np.sin(2 * np.pi * 220 * t) + 0.001 * rng.standard_normal(len(t))
    loud = (t >= BURST[0]) & (t < BURST[1])
    wave[loud] = 0.5 * np.sin(2 * np.pi * 440 * t[loud]) + 0.05 * rng.standard_normal(int(loud.sum()))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([wave * (1 - 0.2 * c) for c in range(channels)], axis=1).astype(np.float32), rate)
    return path


def rms_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x)))


def cut(source: Path, start: float, seconds: float, dest: Path) -> Path:
    """The stretch of ``source`` a preview from ``start`` converts, as a file of its own."""
    data, rate = sf.read(str(source), dtype="float32", always_2d=True)
    first = round(start * rate)
    sf.write(dest, data[first : first + round(seconds * rate)], rate, subtype=sf.info(str(source)).subtype)
    return dest


# -- choosing the excerpt (no models) --------------------------------------------------------


def test_the_scan_finds_the_loudest_stretch_across_reads(tmp_path):
    song = burst_track(tmp_path / "s.flac", 25.0, 44100, 2)  # longer than one scan read (10 s)
    info = probe(song)
    excerpt = preview.choose_excerpt(song, info, 3.0)
    assert excerpt.frames == 3 * 44100 and not excerpt.note
    first, last = excerpt.seconds
    assert abs(first - BURST[0]) < 0.01 and abs(last - BURST[1]) < 0.01
    silent = tmp_path / "quiet.wav"
    sf.write(silent, np.zeros((5 * RATE, 1), np.float32), RATE)
    assert preview.choose_excerpt(silent, probe(silent), 2.0).start == 0


def test_excerpt_rules_start_whole_and_past_the_end(tmp_path):
    song = burst_track(tmp_path / "s.wav", 10.0)
    info = probe(song)
    assert preview.choose_excerpt(song, info, 3.0, start=2.5) == preview.Excerpt(round(2.5 * RATE), 3 * RATE, RATE)
    whole = preview.choose_excerpt(song, info, 30.0, start=4.0)
    assert (whole.start, whole.frames) == (0, info.frames) and "whole track" in whole.note
    late = preview.choose_excerpt(song, info, 3.0, start=30.0)
    assert (late.start, late.frames) == (7 * RATE, 3 * RATE)
    assert late.note == "start moved back: the track ends at 10.0 s"
    assert preview.preview_path(Path("o/a/song.flac")) == Path("o/a/song.preview.flac")


# -- converting ----------------------------------------------------------------------------


def test_preview_of_the_loudest_stretch_is_that_stretch_converted(served, tmp_path):
    song = burst_track(tmp_path / "in" / "song.wav")
    out = tmp_path / "out"
    r = run("convert", tmp_path / "in", "--to", "rock", "-o", out, "--preview", "3")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["song.preview.wav"]  # never the full output's name
    made = out / "song.preview.wav"
    info = sf.info(str(made))
    assert (info.samplerate, info.channels, info.frames) == (RATE, 1, 3 * RATE)
    assert re.search(r"│\s+3\.0 s │[^│]+│ 12\.0–15\.0 s │ converted", r.output), r.output  # duration, excerpt
    # Far louder than a preview of the quiet part (the levelling follows the input's level):
    quiet = run("convert", song, "--to", "rock", "-o", tmp_path / "q", "--preview", "3", "--preview-start", "2")
    assert quiet.exit_code == 0, quiet.output
    loud_db, quiet_db = (rms_db(sf.read(str(f))[0]) for f in (made, tmp_path / "q" / "song.preview.wav"))
    assert loud_db - quiet_db > 20
    # ... and it is exactly what converting that stretch as a file of its own writes.
    [result] = Converter(ConvertOptions(genre="rock", output=tmp_path / "o2", preview=3.0)).convert([song])
    assert result.excerpt is not None and abs(result.excerpt[0] - BURST[0]) < 0.01
    alone = cut(song, result.excerpt[0], 3.0, tmp_path / "alone.wav")
    run("convert", alone, "--to", "rock", "-o", tmp_path / "o3", "-q")
    assert (tmp_path / "o3" / "alone.wav").read_bytes()[44:] == made.read_bytes()[44:]  # past the WAV header


def test_preview_start_picks_the_place_and_keeps_the_format(served, tmp_path):
    song = burst_track(tmp_path / "s.flac", 12.0, 44100, 2)
    out = tmp_path / "out"
    r = run("convert", song, "--to", "rock", "-o", out, "--preview", "2.5", "--preview-start", "4")
    assert r.exit_code == 0, r.output
    made = out / "s.preview.flac"
    info = sf.info(str(made))
    assert (info.format, info.samplerate, info.channels, info.frames) == ("FLAC", 44100, 2, round(2.5 * 44100))
    assert "│ 4.0–6.5 s │" in r.output
    alone = cut(song, 4.0, 2.5, tmp_path / "alone.flac")
    assert run("convert", alone, "--to", "rock", "-o", tmp_path / "o2", "-q").exit_code == 0
    assert np.array_equal(sf.read(str(made))[0], sf.read(str(tmp_path / "o2" / "alone.flac"))[0])


def test_short_tracks_whole_late_starts_moved_bad_files_alone(served, tmp_path):
    folder = tmp_path / "in"
    write_tone(folder / "short.wav", 1.5)
    burst_track(folder / "long.wav", 8.0)
    sf.write(folder / "nan.wav", np.full((5 * RATE, 1), np.nan, np.float32), RATE, subtype="FLOAT")
    out = tmp_path / "out"
    options = ["--to", "rock", "-o", out, "--preview", "3", "--preview-start", "7"]
    dry = run("convert", folder, *options, "--dry-run")  # the table wraps long notes: the dry run does not
    r = run("convert", folder, *options)
    assert r.exit_code == 1, r.output  # nan.wav failed; the others converted
    assert "nan.wav: contains NaN or infinite samples" in r.output
    assert sf.info(str(out / "short.preview.wav")).frames == round(1.5 * RATE)  # whole
    assert "(excerpt 0.0–1.5 s; whole track: shorter than 3 s)" in dry.output
    assert sf.info(str(out / "long.preview.wav")).frames == 3 * RATE
    assert "│ 5.0–8.0 s │" in r.output
    assert "(excerpt 5.0–8.0 s; start moved back: the track ends at 8.0 s)" in dry.output
    assert not (out / "nan.preview.wav").exists()


def test_progress_and_durations_count_the_excerpt(served, tmp_path):
    song = burst_track(tmp_path / "s.wav", 9.0)
    seen: list[float] = []
    options = ConvertOptions(genre="rock", output=tmp_path / "o", preview=2.0, segment_seconds=1.0)
    [result] = Converter(options, lambda seconds, r: seen.append(seconds)).convert([song])
    assert result.status == "converted" and result.duration == 2.0 and abs(sum(seen) - 2.0) < 1e-9
    assert result.output == tmp_path / "o" / "s.preview.wav" and sf.info(str(result.output)).frames == 2 * RATE


def test_dry_run_says_the_excerpt(served, tmp_path):
    song = burst_track(tmp_path / "s.wav")
    r = run("convert", song, "--to", "rock", "-o", tmp_path / "o", "--preview", "3", "--dry-run")
    assert r.exit_code == 0, r.output
    assert re.search(rf"{re.escape(str(song))} -> {re.escape(str(tmp_path / 'o' / 's.preview.wav'))} "
                     r"\(excerpt 12\.0–15\.0 s\)", r.output), r.output  # fmt: skip
    assert not (tmp_path / "o").exists()


def test_previews_and_full_outputs_never_skip_or_replace_each_other(served, tmp_path):
    song = write_tone(tmp_path / "s.wav", 4.0)
    out = tmp_path / "o"
    assert run("convert", song, "--to", "rock", "-o", out, "--preview", "1").exit_code == 0
    made = out / "s.preview.wav"
    stamp = made.stat().st_mtime_ns
    r = run("convert", song, "--to", "rock", "-o", out, "--preview", "1", "--skip-existing")
    assert r.exit_code == 0 and "skipped (output exists)" in r.output and made.stat().st_mtime_ns == stamp
    r = run("convert", song, "--to", "rock", "-o", out, "--skip-existing")  # a full run: not skipped
    assert r.exit_code == 0 and "converted" in r.output and "skipped" not in r.output
    assert sf.info(str(out / "s.wav")).frames == 4 * RATE and made.stat().st_mtime_ns == stamp


def test_report_with_preview(served, tmp_path):
    song = burst_track(tmp_path / "in" / "s.wav")
    page = tmp_path / "report.html"
    r = run("convert", song, "--to", "rock", "-o", tmp_path / "o", "--preview", "3", "--report", page)
    assert r.exit_code == 0, r.output
    text = page.read_text()
    assert "preview of 12.0&ndash;15.0 s" in text and "excerpt 12.0&ndash;15.0 s" in text
    assert "s.preview.wav" in text and "3 s of each track, from its loudest stretch" in text
    assert len(re.findall(r"<audio[^>]+src=\"data:audio/", text)) == 2


@pytest.mark.parametrize(
    "args, says",
    [
        (["--preview", "0"], "--preview"),
        (["--preview", "-2"], "--preview"),
        (["--preview", "nan"], "--preview"),
        (["--preview", "inf"], "--preview"),
        (["--preview-start", "3"], "needs --preview SECONDS"),
        (["--preview", "3", "--preview-start", "-1"], "--preview-start"),
        (["--preview", "3", "--preview-start", "inf"], "--preview-start"),
    ],
)
def test_usage_errors(tmp_path, args, says):
    song = write_tone(tmp_path / "s.wav", 1.0)
    r = run("convert", song, "--to", "rock", "-o", tmp_path / "o", *args)
    assert r.exit_code == 2 and says in r.output, r.output
    assert not (tmp_path / "o").exists()


def test_options_refuse_bad_previews():
    for bad in [dict(preview=0.0), dict(preview=float("nan")), dict(preview_start=1.0),
                dict(preview=1.0, preview_start=-1.0)]:  # fmt: skip
        with pytest.raises(ValueError):
            ConvertOptions(genre="rock", **bad)
