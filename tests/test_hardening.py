"""A hostile or unlucky user (issue 13): each case ends in one clear line and the right exit
code, the rest of the batch converts, and nothing hangs, crashes or is overwritten."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from genreshift import atomic, audio, checkpoint, registry
from genreshift.checkpoint import CheckpointError
from genreshift.cli import app
from genreshift.errors import write_reason
from genreshift.pipeline import Converter, ConvertOptions
from helpers import sigterm_once, tiny_translator, tiny_vocoder, write_tone

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def one_line_failure(result, text: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    assert text in result.output and "Traceback" not in result.output


def cli(*args, timeout=120, **kwargs) -> subprocess.CompletedProcess:
    """The CLI in a child process (for hangs, signals and dropped capabilities)."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "genreshift", *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, **kwargs)


# -- 1-3: what a folder may hold ------------------------------------------------------------


def test_symlink_loop_fails_alone(served, tmp_path):
    folder = tmp_path / "r"
    write_tone(folder / "good.wav", 0.5)
    (folder / "loop.wav").symlink_to("loop.wav")
    r = run("convert", folder, "--to", "rock", "-o", tmp_path / "o")
    one_line_failure(r, "loop.wav: symlink loop")
    assert (tmp_path / "o" / "good.wav").is_file()
    one_line_failure(run("convert", folder / "loop.wav", "--to", "rock", "-o", tmp_path / "o2"), "symlink loop")


def test_a_text_file_named_mp3_gets_one_line_and_no_decoder_chatter(served, tmp_path):
    folder = tmp_path / "r"
    write_tone(folder / "good.wav", 0.5)
    (folder / "notes.mp3").write_text("not audio, whatever the name says\n" * 20)
    proc = cli("convert", folder, "--to", "rock", "-o", tmp_path / "o")
    assert proc.returncode == 1, proc.stderr
    assert "notes.mp3: not a readable audio file (Format not recognised.)" in proc.stderr
    # mpg123's own notes ("Illegal Audio-MPEG-Header ...") go nowhere, and stderr works after
    assert "MPEG" not in proc.stderr and "does not exist" not in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "o" / "good.wav").is_file()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="this platform has no FIFOs")
def test_fifo_named_wav_is_skipped_not_opened(served, tmp_path):
    folder = tmp_path / "r"
    write_tone(folder / "good.wav", 0.5)
    os.mkfifo(folder / "x.wav")
    proc = cli("convert", folder, "--to", "rock", "-o", tmp_path / "o", "--dry-run", timeout=120)  # hung before
    assert proc.returncode == 1, proc.stderr
    assert "x.wav: not a regular file (a FIFO)" in proc.stderr and "Traceback" not in proc.stderr
    assert "good.wav ->" in proc.stdout
    with pytest.raises(audio.AudioError, match="a FIFO"):
        audio.probe(folder / "x.wav")


def _no_read_access(path: Path) -> bool:
    return not os.access(path, os.R_OK)


def test_unreadable_subfolder_is_named_and_fails(served, tmp_path):
    folder = tmp_path / "r"
    write_tone(folder / "good.wav", 0.5)
    write_tone(folder / "locked" / "hidden-away.wav", 0.5)
    (folder / "locked").chmod(0)
    try:
        if os.geteuid() != 0:
            assert _no_read_access(folder / "locked")
            r = run("convert", folder, "--to", "rock", "-o", tmp_path / "o")
            code, output = r.exit_code, r.output
        else:  # root reads everything: drop the two capabilities that let it
            capsh = shutil.which("capsh")
            if capsh is None:
                pytest.skip("running as root without capsh: cannot make a folder unreadable")
            args = [sys.executable, "-m", "genreshift", "convert", folder, "--to", "rock", "-o", tmp_path / "o"]
            line = " ".join(f"'{a}'" for a in args)
            env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
            proc = subprocess.run([capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", line],
                                  env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
            if "Operation not permitted" in proc.stderr and "capsh" in proc.stderr:
                pytest.skip("capsh may not drop capabilities here")
            code, output = proc.returncode, proc.stdout + proc.stderr
    finally:
        (folder / "locked").chmod(0o755)
    assert code == 1, output
    assert "locked: cannot read folder (Permission denied)" in output and "Traceback" not in output
    assert (tmp_path / "o" / "good.wav").is_file()


# -- 4: --report never overwrites what it should not ----------------------------------------


def test_report_path_is_checked(served, tmp_path):
    song = write_tone(tmp_path / "in" / "s.wav", 0.5)
    before = song.read_bytes()
    one_line_failure(run("convert", song, "--to", "rock", "-o", tmp_path / "o", "--report", song), "is an input", 2)
    assert song.read_bytes() == before and not (tmp_path / "o").exists()
    out = tmp_path / "o" / "s.wav"
    one_line_failure(run("convert", song, "--to", "rock", "-o", tmp_path / "o", "--report", out), "is an output", 2)
    notes = tmp_path / "notes.html"
    notes.write_text("<p>my notes</p>")
    one_line_failure(
        run("convert", song, "--to", "rock", "-o", tmp_path / "o", "--report", notes), "not a genreshift report", 2
    )
    assert notes.read_text() == "<p>my notes</p>"
    page = tmp_path / "page.html"
    assert run("convert", song, "--to", "rock", "-o", tmp_path / "o", "--report", page).exit_code == 0
    r = run("convert", song, "--to", "rock", "-o", tmp_path / "o", "--report", page)  # an earlier report: replaced
    assert r.exit_code == 0, r.output
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


# -- 5: Vorbis crashes above 200 kHz: checked before any encoder opens ----------------------


def test_ogg_output_rate_is_checked_before_encoding(served, tmp_path):
    r = run(
        "convert", write_tone(tmp_path / "s.wav", 0.3), "--to", "rock", "--format", "ogg", "--sample-rate", "256000"
    )
    one_line_failure(r, "OGG output is limited to 200000 Hz", 2)
    song = write_tone(tmp_path / "in" / "c.ogg", 0.3, 44100, 1, format="OGG", subtype="VORBIS")
    r = run("convert", song, "--to", "rock", "-o", tmp_path / "o", "--sample-rate", "384000")  # crashed (exit 139)
    assert r.exit_code == 0, r.output
    assert sf.info(str(tmp_path / "o" / "c.wav")).samplerate == 384000  # the input's container cannot: WAV
    hi = write_tone(tmp_path / "in2" / "hi.wav", 0.05, 384000)
    ok = write_tone(tmp_path / "in2" / "ok.wav", 0.3)
    r = run("convert", hi.parent, "--to", "rock", "-o", tmp_path / "o2", "--format", "ogg")
    one_line_failure(r, "hi.wav: OGG output is limited to 200000 Hz")
    assert (tmp_path / "o2" / ok.with_suffix(".ogg").name).is_file()


# -- 6-7: damaged checkpoints and non-finite output -----------------------------------------


def _damaged(kind: str) -> dict:
    plain = tiny_translator("rock").to_plain()
    if kind == "no state_dict":
        del plain["state_dict"]
    elif kind == "empty state_dict":
        plain["state_dict"] = {}
    elif kind == "string state_dict":
        plain["state_dict"] = "weights"
    elif kind == "sizes do not fit":
        plain["config"]["channels"] = 32
    elif kind == "negative sizes":
        plain["config"]["n_blocks"] = -2
    elif kind == "huge sizes":
        plain["config"]["channels"] = 10**9  # must not try to allocate it
    elif kind == "NaN weights":
        plain["state_dict"] = {k: torch.full_like(v, float("nan")) for k, v in plain["state_dict"].items()}
    elif kind == "inf weights":
        key = next(iter(plain["state_dict"]))
        plain["state_dict"][key] = torch.full_like(plain["state_dict"][key], float("inf"))
    return plain


DAMAGE = ["no state_dict", "empty state_dict", "string state_dict", "sizes do not fit", "negative sizes",
          "huge sizes", "NaN weights", "inf weights"]  # fmt: skip


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_checkpoint_is_one_line(tmp_path, kind):
    torch.save(_damaged(kind), tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="bad.pt: not a usable genreshift checkpoint: "):
        checkpoint.load(tmp_path / "bad.pt")


def test_damaged_checkpoints_on_every_path(served, tmp_path):
    song = write_tone(tmp_path / "s.wav", 0.3)
    bad = tmp_path / "bad.pt"
    torch.save(_damaged("sizes do not fit"), bad)
    one_line_failure(run("convert", song, "--model", bad, "-o", tmp_path / "o"), "not a usable genreshift checkpoint")
    voc = tiny_vocoder("fast").to_plain()
    voc["state_dict"] = {k: v * float("nan") for k, v in voc["state_dict"].items()}
    torch.save(voc, tmp_path / "badvoc.pt")
    r = run("convert", song, "--to", "rock", "--vocoder", tmp_path / "badvoc.pt", "-o", tmp_path / "o")
    one_line_failure(r, "badvoc.pt: not a usable genreshift checkpoint: NaN or infinite weights")
    (tmp_path / "home" / "models").mkdir(parents=True)
    torch.save(_damaged("negative sizes"), tmp_path / "home" / "models" / "mine.pt")
    one_line_failure(run("convert", song, "--to", "mine", "-o", tmp_path / "o"), "mine.pt: not a usable")
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").rglob("*.wav"))


def test_non_finite_model_output_fails_the_track_not_the_batch(served, tmp_path):
    good, bad = write_tone(tmp_path / "in" / "a.wav", 0.5), write_tone(tmp_path / "in" / "b.wav", 0.5)
    conv = Converter(ConvertOptions(genre="rock", output=tmp_path / "o", batch_size=1))
    vocode = conv.vocoder.forward
    calls = []

    def sometimes_nan(mel):  # the second track's windows come out NaN
        calls.append(1)
        out = vocode(mel)
        return out * float("nan") if len(calls) > 1 else out

    conv.vocoder.forward = sometimes_nan
    results = conv.convert([good, bad])
    assert [r.status for r in results] == ["converted", "failed"]
    assert "b.wav: the models gave NaN or infinite audio; not written" in results[1].message
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.wav"]


# -- 8: pull repairs what verify flags -------------------------------------------------------


def test_pull_repairs_a_corrupt_cached_copy_from_the_bundled_one(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRESHIFT_OFFLINE", "1")  # the bundled copy is enough: no network
    entry = registry.find_entry("rock")
    cached = registry.cached_path(entry)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"corrupt")
    assert run("models", "verify", "rock").exit_code == 1
    r = run("models", "pull", "rock")
    assert r.exit_code == 0, r.output
    assert run("models", "verify", "rock").exit_code == 0
    assert registry.sha256(cached) == entry.sha256


# -- 9: numeric options -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "option,value",
    [("--segment-seconds", "inf"), ("--segment-seconds", "1e308"), ("--segment-seconds", "nan"),
     ("--batch-size", "0"), ("--batch-size", "1000000"), ("--chunk-frames", "100000000"),
     ("--overlap", "-1"), ("--sample-rate", "0"), ("--sample-rate", "100000000000")],
)  # fmt: skip
def test_numeric_options_out_of_range_are_usage_errors(served, tmp_path, option, value):
    r = run("convert", write_tone(tmp_path / "s.wav", 0.2), "--to", "rock", "-o", tmp_path / "o", option, value)
    assert r.exit_code == 2, r.output
    assert option in r.output and "Traceback" not in r.output


# -- 10: SIGTERM, and temp files of a killed run ----------------------------------------------


def test_sigterm_stops_like_ctrl_c_and_leaves_no_temp_file(served, tmp_path):
    for i in range(3):
        write_tone(tmp_path / "in" / f"t{i}.wav", 40.0)
    out = tmp_path / "o"
    args = ["convert", tmp_path / "in", "--to", "rock", "-o", out, "--vocoder", "griffinlim", "--segment-seconds", "2"]
    ended = sigterm_once(args, temp_files=1, out=out)
    stderr = ended.stderr
    assert ended.returncode == 143, stderr
    assert "interrupted (SIGTERM)" in stderr and "Traceback" not in stderr
    assert f"{tmp_path / 'in' / 't2.wav'}: interrupted; not written" in stderr  # the lines name the file
    assert not list(out.glob(".*.part"))


def test_stale_temp_files_go_but_live_and_foreign_ones_stay(tmp_path):
    out = tmp_path / "o"
    stale, live = atomic.temp_beside(out / "a.wav"), atomic.temp_beside(out / "sub" / "b.wav")
    fresh = atomic.temp_beside(out / "c.wav")
    foreign = out / ".notes.txt.part"
    foreign.write_text("mine")
    lock = atomic.TempLock(live)  # a run still writing b.wav
    old = time.time() - 3600
    for p in (stale, live, foreign):
        os.utime(p, (old, old))
    try:
        assert atomic.remove_stale(out) == [stale]
    finally:
        lock.release()
    assert live.exists() and fresh.exists() and foreign.exists()
    assert atomic.remove_stale(out) == [live]  # its writer is gone now


def test_a_new_run_removes_temp_files_of_a_killed_one(served, tmp_path):
    song = write_tone(tmp_path / "in" / "s.wav", 0.5)
    out = tmp_path / "o"
    assert run("convert", song, "--to", "rock", "-o", out).exit_code == 0
    leftover = atomic.temp_beside(out / "t.wav")
    os.utime(leftover, (time.time() - 600, time.time() - 600))
    r = run("convert", song, "--to", "rock", "-o", out, "--skip-existing")  # nothing to convert, still cleans
    assert r.exit_code == 0 and "removed 1 temp file(s) left by an interrupted run" in r.output
    assert not leftover.exists()


# -- smaller findings --------------------------------------------------------------------------


def test_progress_counts_each_second_once(served, tmp_path, monkeypatch):
    from genreshift import streaming

    data = sf.read(str(write_tone(tmp_path / "x.wav", 20.0)), dtype="float32")[0]
    data[15 * 22050] = np.nan  # fails after a few segments were converted and counted
    write_tone(tmp_path / "in" / "good.wav", 7.0)
    sf.write(tmp_path / "in" / "bad.wav", data, 22050, subtype="FLOAT")
    monkeypatch.setattr(streaming, "BLOCK_SECONDS", 2.0)
    seen = []
    conv = Converter(ConvertOptions(genre="rock", output=tmp_path / "o", segment_seconds=3.0),
                     progress=lambda seconds, result: seen.append(seconds))  # fmt: skip
    results = conv.convert([tmp_path / "in"])
    assert [r.status for r in results] == ["failed", "converted"]
    assert sum(seen) == pytest.approx(27.0, abs=1e-6)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None,
                    reason="a small full file system needs root to mount a tmpfs")  # fmt: skip
def test_disk_full_is_named(served, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        song = write_tone(tmp_path / "s.wav", 2.0)
        r = run("convert", song, "--to", "rock", "-o", small, "--format", "wav")
        one_line_failure(r, f"{small / 's.wav'}: cannot write output: disk full")
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_write_reasons_in_plain_words(tmp_path):
    import errno

    assert write_reason(PermissionError(errno.EACCES, "Permission denied"), tmp_path) == "permission denied"
    assert write_reason(OSError(errno.ENOSPC, "No space left on device"), tmp_path) == "disk full"
    assert write_reason(RuntimeError("System error."), tmp_path) == "System error."  # the folder is fine


# -- 11: loudness kept, no hard clipping (the limiter: test_limiter.py) ---------------------------


def _stream(leveller, out: torch.Tensor, energy: np.ndarray, pieces: int) -> torch.Tensor:
    hop, parts = leveller.hop, []
    frames = np.array_split(np.arange(len(energy)), pieces)
    for i, f in enumerate(frames):
        a, b = int(f[0]) * hop, min(out.shape[-1], (int(f[-1]) + 1) * hop)
        parts.append(leveller.push(out[..., a:b], energy[f[0] : f[-1] + 1], last=i == pieces - 1))
    return torch.cat(parts, dim=-1)


def test_leveller_matches_the_input_level_and_ignores_the_segmenting():
    from genreshift.loudness import Leveller

    hop, rng = 256, np.random.default_rng(0)
    n = hop * 2000 - 77
    t = np.arange(n) / 22050
    source = 0.1 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.2 * t))  # slow swell
    out = torch.from_numpy(4 * source + 0.01 * rng.standard_normal(n))[None]  # 12 dB too loud
    padded = np.pad(source, (0, 2000 * hop - n))
    energy = (padded.reshape(-1, hop) ** 2).sum(axis=1)
    whole, pieces = Leveller(hop), Leveller(hop)
    a, b = _stream(whole, out, energy, 1), _stream(pieces, out, energy, 7)
    assert a.shape == out.shape and torch.allclose(a, b, atol=1e-9)
    change = 10 * np.log10((a.numpy() ** 2).mean() / (source**2).mean())
    assert abs(change) < 0.5 and abs(whole.correction_db + 12) < 0.3 and not whole.limited
    too_quiet = Leveller(hop)
    _stream(too_quiet, out * 1e-3, energy, 3)  # 48 dB too quiet: boosted only up to the limit
    assert too_quiet.limited


def test_convert_keeps_the_level_and_shows_the_gain_with_verbose(served, tmp_path):
    song = write_tone(tmp_path / "s.wav", 6.0)
    x = sf.read(str(song))[0]
    r = run("convert", song, "--to", "rock", "-o", tmp_path / "o", "-v")
    assert r.exit_code == 0, r.output
    y = sf.read(str(tmp_path / "o" / "s.wav"))[0]
    raw = Converter(ConvertOptions(genre="rock", output=tmp_path / "raw", level=False)).convert([song])
    z = sf.read(str(raw[0].output))[0]
    change, raw_change = (10 * np.log10((v**2).mean() / (x**2).mean()) for v in (y, z))
    assert abs(change) < abs(raw_change) and (abs(change) <= 3 or "(limit)" in r.output)
    # the gain column shows what levelling applied: the output's level over the models' own
    shown = re.search(r"│\s*([+-]\d+\.\d) dB( \(limit\))?\s*│", r.output)
    assert shown and abs(float(shown[1]) - (change - raw_change)) < 0.3, r.output
    assert "gain" in r.output and "level fix" not in r.output
    plain = run("convert", song, "--to", "rock", "-o", tmp_path / "o")  # by default: no gain column
    assert plain.exit_code == 0 and "gain" not in plain.output and " dB" not in plain.output
