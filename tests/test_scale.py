"""A library split across processes: --shard K/N, and convert under torchrun (2 gloo
processes on the CPU), including a rank that dies and is restarted."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
from typer.testing import CliRunner

from genreshift import atomic
from genreshift.cli import app
from genreshift.shards import balanced_split, parse_shard, take_share
from helpers import write_tone

HERE = Path(__file__).parent
SECONDS = [0.4, 2.6, 0.9, 1.7, 0.6, 2.1, 1.3]  # 7 files of different lengths


def library(root: Path) -> list[Path]:
    return [write_tone(root / f"t{i}.wav", s) for i, s in enumerate(SECONDS)]


# -- the split ------------------------------------------------------------------------------


def test_balanced_split_is_longest_first_and_even():
    owner = balanced_split([1, 2, 3, 4, 5, 6, 7], 2)
    loads = [sum(w for w, o in zip([1, 2, 3, 4, 5, 6, 7], owner) if o == p) for p in (0, 1)]
    assert loads == [14, 14]
    assert owner == balanced_split([1, 2, 3, 4, 5, 6, 7], 2)  # every process computes the same
    # one long file against many short ones: counting files would put 4 beside it
    assert balanced_split([100, 1, 1, 1, 1, 1, 1, 1, 1], 2) == [0] + [1] * 8
    assert balanced_split([], 3) == [] and balanced_split([5.0], 3) == [0]
    assert balanced_split([3, 1, 2], 10**6) == [0, 2, 1]  # more parts than items: one each, no huge heap


def test_take_share_partitions_and_nests():
    items = list(range(20))
    weight = lambda i: (i * 7) % 11 + 0.5  # noqa: E731
    shares = [take_share(items, weight, [(k, 3)]) for k in range(3)]
    assert sorted(x for s in shares for x in s) == items and all(s == sorted(s) for s in shares)
    nested = [take_share(items, weight, [(k, 3), (r, 2)]) for k in range(3) for r in range(2)]
    assert sorted(x for s in nested for x in s) == items
    assert take_share(items, weight, ()) == items


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1", "a/b", "1/0", "1/2/3", "0/1000001"])
def test_parse_shard_rejects(text):
    with pytest.raises(ValueError):
        parse_shard(text)


def test_parse_shard():
    assert parse_shard("0/1") == (0, 1) and parse_shard("2/5") == (2, 5)


# -- --shard K/N: a job array -----------------------------------------------------------------


def test_shards_cover_every_file_exactly_once(served, tmp_path):
    files = library(tmp_path / "lib")
    (tmp_path / "lib" / "broken.wav").write_bytes(b"not audio" * 20)
    out = tmp_path / "out"
    runner = CliRunner()
    produced, listed = [], []
    for k in range(3):
        before = set(out.rglob("*.wav")) if out.exists() else set()
        r = runner.invoke(app, ["convert", str(tmp_path / "lib"), "--to", "rock", "-o", str(out), "--shard", f"{k}/3"])
        dry = runner.invoke(app, ["convert", str(tmp_path / "lib"), "--to", "rock", "-o", str(tmp_path / "x"),
                                  "--shard", f"{k}/3", "--dry-run"])  # fmt: skip
        listed.append(sorted(line.split(" -> ")[0] for line in dry.output.splitlines() if " -> " in line))
        produced.append(sorted(p.name for p in set(out.rglob("*.wav")) - before))
        # the broken file belongs to exactly one shard, which reports it and exits 1
        assert r.exit_code == ("broken.wav: not a readable audio file" in r.output), r.output
    assert sorted(n for names in produced for n in names) == sorted(f.name for f in files)
    assert [[Path(p).name for p in names] for names in listed] == produced
    # the same files go to the same shard on every run, whatever exists already
    r = runner.invoke(app, ["convert", str(tmp_path / "lib"), "--to", "rock", "-o", str(out), "--shard", "1/3",
                            "--skip-existing", "--dry-run"])  # fmt: skip
    assert "->" not in r.output
    again = runner.invoke(app, ["convert", str(tmp_path / "lib"), "--to", "rock", "-o", str(tmp_path / "y"),
                                "--shard", "1/3", "--dry-run"])  # fmt: skip
    assert (
        sorted(Path(line.split(" -> ")[0]).name for line in again.output.splitlines() if " -> " in line) == produced[1]
    )


def test_bad_shard_is_a_usage_error(served, tmp_path):
    r = CliRunner().invoke(app, ["convert", str(tmp_path), "--to", "rock", "--shard", "4/4"])
    assert r.exit_code == 2 and "--shard" in r.output


# -- torchrun: two gloo processes on the CPU ---------------------------------------------------


def _env(threads: int) -> dict[str, str]:
    """Wide output, so the table shows whole paths; the same torch threads in every process."""
    return {**os.environ, "COLUMNS": "400", "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(HERE.parent)}


def _rank_threads() -> int:
    """What each of 2 ranks on this machine uses (distrib.share_cpu_threads)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // 2)


def _torchrun(*args, threads: int, cwd: Path, restarts: int = 0) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "--max-restarts", str(restarts), "--monitor-interval", "0.2", *map(str, args)]  # fmt: skip
    return subprocess.run(cmd, cwd=cwd, env=_env(threads), capture_output=True, text=True, timeout=240)


def _single(lib: Path, out: Path, threads: int) -> str:
    cmd = [sys.executable, "-m", "genreshift", "convert", str(lib), "--to", "rock", "-o", str(out), "-v"]
    proc = subprocess.run(cmd, env=_env(threads), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _gains(stdout: str) -> dict[str, str]:
    """File name -> its 'gain' cell (the fourth column, with -v) in the summary table."""
    return {m[0]: m[1].strip() for m in re.findall(r"(t\d)\.wav\s*│[^│]*│[^│]*│([^│]*)│", stdout)}


def _rows(stdout: str) -> list[str]:
    """File names in the summary table's rows."""
    return re.findall(r"(t\d)\.wav\s*│", stdout)


def test_torchrun_two_ranks_match_one_process(served, tmp_path):
    files = library(tmp_path / "lib")
    threads = _rank_threads()
    single = _single(tmp_path / "lib", tmp_path / "ref", threads)  # also fills the weights cache
    leftover = atomic.temp_beside(tmp_path / "out" / "sub" / "t9.wav")  # a killed run's, an hour old
    os.utime(leftover, (time.time() - 3600, time.time() - 3600))
    proc = _torchrun("-m", "genreshift", "convert", tmp_path / "lib", "--to", "rock", "-o", tmp_path / "out",
                     "-v", threads=threads, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("genreshift convert") == 1  # one table, from rank 0
    assert sorted(_rows(proc.stdout)) == [f"t{i}" for i in range(7)]  # each file once
    assert proc.stdout.count("converted") == 7
    # levelled as in one process, and rank 0's table shows every rank's corrections
    assert _gains(proc.stdout) == _gains(single) and all(" dB" in g for g in _gains(single).values())
    assert proc.stdout.count("removed 1 temp file(s) left by an interrupted run") == 1 and not leftover.exists()
    for f in files:
        assert (tmp_path / "out" / f.name).read_bytes() == (tmp_path / "ref" / f.name).read_bytes(), f.name


def test_torchrun_restarts_a_killed_rank_and_finishes(served, tmp_path):
    files = library(tmp_path / "lib")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".t1.wav.stale.part").write_bytes(b"half a file from an earlier crash")
    proc = _torchrun(HERE / "dying_rank.py", "convert", tmp_path / "lib", "--to", "rock", "-o", out,
                     threads=_rank_threads(), cwd=tmp_path, restarts=1)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "exitcode: -9" in proc.stderr  # rank 1 really died (SIGKILL) and was restarted
    assert sorted(_rows(proc.stdout)) == [f"t{i}" for i in range(7)]
    assert "skipped (output exists)" in proc.stdout  # what the first attempt finished stays
    for f, seconds in zip(files, SECONDS):
        info = sf.info(str(out / f.name))
        assert abs(info.frames - round(seconds * info.samplerate)) <= 1, f.name


def test_torchrun_report_path_is_checked_against_every_share(served, tmp_path):
    library(tmp_path / "lib")
    out = tmp_path / "out"
    for name in ("t0.wav", "t1.wav"):  # ranks hold different files: one of these is another rank's
        proc = _torchrun("-m", "genreshift", "convert", tmp_path / "lib", "--to", "rock", "-o", out,
                         "--report", out / name, threads=1, cwd=tmp_path)  # fmt: skip
        assert proc.returncode != 0 and proc.stderr.count("is an output of this conversion") == 1, proc.stderr[-3000:]
        assert re.findall(r"exitcode\s*:\s*(-?\d+)", proc.stderr) and set(
            re.findall(r"exitcode\s*:\s*(-?\d+)", proc.stderr)
        ) == {"2"}
        assert not out.exists() or not list(out.rglob("*.wav"))  # refused before converting


def test_torchrun_sigterm_stops_every_rank_and_leaves_no_temp_file(served, tmp_path):
    for i in range(4):
        write_tone(tmp_path / "in" / f"t{i}.wav", 40.0)
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "--monitor-interval", "0.2", "-m", "genreshift", "convert", str(tmp_path / "in"), "--to", "rock",
           "-o", str(out), "--vocoder", "griffinlim", "--segment-seconds", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while len(list(out.glob(".*.part"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # both ranks are writing
    if proc.poll() is not None:
        pytest.fail(f"finished before temp files were seen: {proc.communicate()}")
    # SIGTERM to every worker, as a batch system's stop does
    workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(workers) == 2
    for pid in workers:
        os.kill(int(pid), signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert stderr.count("interrupted (SIGTERM)") == 1, stderr[-3000:]  # from rank 0 only
    assert ": interrupted; not written" in stderr
    assert set(re.findall(r"exitcode\s*:\s*(-?\d+)", stderr)) == {"143"}, stderr[-3000:]
    assert not list(out.glob(".*.part"))
