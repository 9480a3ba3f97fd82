"""--workers (decode and encode threads) and --batch-size auto (issue 24): the same outputs
with any number of workers, a file failing in a worker fails alone, SIGTERM leaves no temp
file, and auto sizing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from genreshift import batching, writing
from genreshift.cli import app
from genreshift.options import ConvertOptions, default_workers
from genreshift.pipeline import Converter
from helpers import sigterm_once, write_tone

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def library(folder: Path) -> Path:
    """Files of several lengths, rates and channel counts; the longer ones span several segments."""
    for i, (seconds, rate, channels) in enumerate([(2.5, 22050, 1), (0.4, 44100, 2), (3.2, 16000, 1),
                                                   (1.0, 48000, 2), (0.2, 22050, 1), (2.0, 44100, 1)]):  # fmt: skip
        write_tone(folder / f"t{i}.wav", seconds, rate, channels)
    return folder


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_any_number_of_workers_writes_the_same_files(served, tmp_path):
    songs = library(tmp_path / "in")
    outs = {}
    for n in (1, 3):
        out = tmp_path / f"o{n}"
        r = run("convert", songs, "--to", "rock", "-o", out, "--workers", n, "--segment-seconds", 1)
        assert r.exit_code == 0, r.output
        outs[n] = digests(out)
    assert len(outs[1]) == 6 and outs[1] == outs[3]  # bit-identical, not merely close


def test_a_file_failing_in_a_decode_worker_fails_alone(served, tmp_path):
    songs = library(tmp_path / "in")
    wave = np.full((3 * 22050, 1), 0.1, np.float32)
    wave[2 * 22050 :] = np.nan  # decodes fine for its first segments, then fails in a worker
    sf.write(songs / "late-nan.wav", wave, 22050, subtype="FLOAT")
    out = tmp_path / "o"
    r = run("convert", songs, "--to", "rock", "-o", out, "--workers", 3, "--segment-seconds", 1)
    assert r.exit_code == 1, r.output
    assert f"{songs / 'late-nan.wav'}: contains NaN or infinite samples" in r.output and "Traceback" not in r.output
    assert sorted(p.name for p in out.iterdir()) == [f"t{i}.wav" for i in range(6)]  # no temp file left


def test_a_file_failing_in_a_writer_fails_alone(served, tmp_path, monkeypatch):
    songs = library(tmp_path / "in")
    add = writing.TrackWriter.add

    def failing_add(self, seg, summed, weights):
        if self.path.name == "t2.wav" and seg.out_start > 0:  # its second segment or later
            raise writing.AudioError(f"{self.path}: cannot write output: disk full")
        return add(self, seg, summed, weights)

    monkeypatch.setattr(writing.TrackWriter, "add", failing_add)
    out = tmp_path / "o"
    r = run("convert", songs, "--to", "rock", "-o", out, "--workers", 3, "--segment-seconds", 1)
    assert r.exit_code == 1, r.output
    assert f"{out / 't2.wav'}: cannot write output: disk full" in r.output
    assert sorted(p.name for p in out.iterdir()) == [f"t{i}.wav" for i in range(6) if i != 2]


def test_sigterm_with_workers_leaves_no_temp_file(served, tmp_path):
    for i in range(4):
        write_tone(tmp_path / "in" / f"t{i}.wav", 30.0)
    out = tmp_path / "o"
    args = ["convert", tmp_path / "in", "--to", "rock", "-o", out, "--vocoder", "griffinlim", "--segment-seconds", "2",
            "--workers", "3"]  # fmt: skip
    ended = sigterm_once(args, temp_files=2, out=out)  # two tracks being written at once: two writer lanes
    assert ended.returncode == 143, ended.stderr
    assert "interrupted (SIGTERM)" in ended.stderr and "Traceback" not in ended.stderr
    assert not list(out.glob(".*.part"))


def test_batch_size_auto_on_a_cpu_is_the_default(served, tmp_path):
    song = write_tone(tmp_path / "in" / "s.wav", 1.5)
    r16 = run("convert", song, "--to", "rock", "-o", tmp_path / "a", "--batch-size", "16")
    auto = run("convert", song, "--to", "rock", "-o", tmp_path / "b", "--batch-size", "AUTO")
    assert r16.exit_code == 0 and auto.exit_code == 0, auto.output
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    conv = Converter(ConvertOptions(genre="rock", batch_size="auto", device="cpu"))
    assert conv.batch_size == batching.CPU_BATCH
    for bad in ["0", "4097", "lots", "1.5"]:
        r = run("convert", song, "--to", "rock", "-o", tmp_path / "c", "--batch-size", bad)
        assert r.exit_code == 2 and "--batch-size" in r.output, r.output
    with pytest.raises(ValueError, match="batch size"):
        ConvertOptions(batch_size="big")
    with pytest.raises(ValueError, match="workers"):
        ConvertOptions(workers=0)


def test_auto_batch_fills_a_share_of_the_free_memory():
    gib = 2**30
    assert batching.batch_for_memory(free_bytes=40 * gib, per_window_bytes=20 * 2**20) == 1024  # capped
    assert batching.batch_for_memory(free_bytes=4 * gib, per_window_bytes=20 * 2**20) == 64  # 102 -> 64
    assert batching.batch_for_memory(free_bytes=0.1 * gib, per_window_bytes=20 * 2**20) == 16  # the floor
    assert batching.auto_batch_size(torch.device("cpu"), []) == batching.CPU_BATCH


def test_default_workers():
    assert default_workers("cpu", cpus=16, processes=1) == 1  # the models need the cores
    assert default_workers("cuda", cpus=16, processes=1) == 15 and default_workers("cuda", cpus=1, processes=1) == 1
    assert default_workers("cuda", cpus=16, processes=4) == 3  # torchrun: 4 GPUs share the cores


def test_a_bug_in_a_writer_is_one_line_per_file_not_silence(served, tmp_path, monkeypatch):
    def broken_add(self, seg, summed, weights):
        raise RuntimeError("a bug")

    monkeypatch.setattr(writing.TrackWriter, "add", broken_add)
    song = write_tone(tmp_path / "in" / "s.wav", 0.5)
    r = run("convert", song, "--to", "rock", "-o", tmp_path / "o", "--workers", 2)
    assert r.exit_code == 1 and f"{song}: not converted: RuntimeError: a bug" in r.output, r.output
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())
