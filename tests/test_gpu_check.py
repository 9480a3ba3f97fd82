"""scripts/gpu_check.sh: valid bash, and loud when it cannot do its job. (The whole run needs
a GPU; `scripts/gpu_check.sh --cpu-smoke` exercises every step on a CPU in about 2 minutes,
and the last test here runs it.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parents[1] / "scripts" / "gpu_check.sh"


def run(*args: str, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [
        "bash",
        str(SCRIPT),
        "--python",
        sys.executable,
        "--out",
        str(tmp_path / "out"),
        "--work",
        str(tmp_path),
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_script_parses_and_documents_itself(tmp_path):
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    r = run("--help", tmp_path=tmp_path)
    assert r.returncode == 0 and "--cpu-smoke" in r.stdout and "finetune" in r.stdout
    r = run("--bogus", tmp_path=tmp_path)
    assert r.returncode == 2 and "unknown option --bogus" in r.stderr


def test_missing_dependencies_stop_it(tmp_path):
    cmd = ["bash", str(SCRIPT), "--python", "/bin/false", "--out", str(tmp_path / "out"), "--work", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "lacks genreshift's dependencies" in r.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU this would run the whole check")
def test_no_gpu_stops_it_at_once(tmp_path):
    r = run(tmp_path=tmp_path)
    assert r.returncode == 1 and "CUDA is not available" in r.stderr and "no usable device" in r.stderr
    assert not (tmp_path / "out" / "tests.log").exists()  # stopped before any step
    assert not list(tmp_path.glob("genreshift-gpu-check.*"))  # its work folder is gone too


def test_cpu_smoke_runs_every_step_and_names_the_bound(tmp_path):
    r = run("--cpu-smoke", tmp_path=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "out"
    for name in ["env.txt", "tests.log", "speed.md", "library.md", "library.json", "finetune-log.jsonl"]:
        assert (out / name).stat().st_size > 0, name
    summary = (out / "summary.md").read_text()
    assert "failed steps: none" in summary and "library end to end, best:" in summary
    assert "busiest:" in summary and "--workers 2" in summary  # each library run, and where its time went
    assert not list(tmp_path.glob("genreshift-gpu-check.*"))  # its work folder is removed
