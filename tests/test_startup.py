"""What a short `genreshift convert` does not spend its time on (benchmarks/startup.py times
it): libraries it has no use for are never imported, and released weights are not built a
second time on the meta device."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from helpers import build_weights, registry_row, tiny_translator, write_tone
from test_cli import run
from test_hardening import one_line_failure

ROOT = Path(__file__).resolve().parents[1]
# Each is imported by something genreshift calls only when it needs it: pooch (and requests)
# by a download, sympy and torch._dynamo by a model built on the meta device (the check of a
# file that is not a released one). torchaudio stays: the mel filters and the resampling are
# its own, and its import costs ~0.07 s here.
NOT_FOR_A_CONVERT = ["pooch", "requests", "sympy", "torch._dynamo"]


def _python(code: str, env: dict[str, str], cwd: Path) -> str:
    env = {**env, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_a_convert_imports_none_of_what_it_does_not_use(weights_dir, tmp_path):
    """Released weights already in the cache, default options, in a fresh process."""
    cache = tmp_path / "cache"
    shutil.copytree(weights_dir, cache)
    song = write_tone(tmp_path / "s.wav", 1.0, 44100, 2)
    env = {**os.environ, "GENRESHIFT_CACHE": str(cache), "GENRESHIFT_REGISTRY": str(cache / "registry.json"),
           "GENRESHIFT_OFFLINE": "1", "OMP_NUM_THREADS": "1"}  # fmt: skip
    code = (
        "import sys\nfrom genreshift.cli import app\n"
        f"try:\n    app(['convert', {str(song)!r}, '--to', 'rock', '-q'], prog_name='genreshift')\n"
        "except SystemExit as exc:\n    print('exit', exc.code)\n"
        f"print('imported:', [m for m in {NOT_FOR_A_CONVERT!r} if m in sys.modules])\n"
    )
    out = _python(code, env, tmp_path)
    assert "exit 0" in out and (tmp_path / "converted" / "rock" / "s.wav").is_file(), out
    assert "imported: []" in out


def test_the_default_cache_is_pooch_s_without_importing_pooch(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GENRESHIFT_CACHE"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    code = (
        "import sys\nfrom genreshift import registry\nours = registry.cache_dir()\n"
        "print('pooch before:', 'pooch' in sys.modules)\nimport pooch\n"
        "print('same:', ours == pooch.os_cache('genreshift'), ours)\n"
    )
    out = _python(code, env, tmp_path)
    assert "pooch before: False" in out and "same: True" in out and str(tmp_path / "xdg") in out


def test_released_weights_that_do_not_fit_are_one_line(tmp_path, monkeypatch):
    """A released file skips the meta-device check; loading its weights still refuses them."""
    folder = tmp_path / "cache"  # the isolated_env fixture's GENRESHIFT_CACHE: found there, no download
    registry = json.loads(build_weights(folder).read_text())
    plain = tiny_translator("rock").to_plain()
    plain["config"]["channels"] = 32  # the weights are for 16
    torch.save(plain, folder / "rock-tiny.pt")
    registry["files"] = [r for r in registry["files"] if r["model"] != "rock"]
    registry["files"].append(registry_row(folder / "rock-tiny.pt", "rock", "translator", genre="rock", vocoder="fast"))
    (folder / "registry.json").write_text(json.dumps(registry))
    monkeypatch.setenv("GENRESHIFT_REGISTRY", str(folder / "registry.json"))
    monkeypatch.setenv("GENRESHIFT_OFFLINE", "1")
    song = write_tone(tmp_path / "s.wav", 0.3)
    one_line_failure(run("convert", song, "--to", "rock", "-o", tmp_path / "o"), "not a usable genreshift checkpoint")
