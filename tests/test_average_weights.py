"""scripts/average_weights.py: the mean of several checkpoints of one model."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from genreshift import checkpoint
from genreshift.config import MelConfig
from genreshift.vocoder import FastVocoder
from helpers import TINY_FAST

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "average_weights.py"


@pytest.fixture
def averager():
    spec = importlib.util.spec_from_file_location("average_weights", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _export(path: Path, seed: int, steps: int, cfg=TINY_FAST) -> checkpoint.Checkpoint:
    torch.manual_seed(seed)
    ckpt = checkpoint.Checkpoint(
        "vocoder", "fast", cfg, MelConfig(), FastVocoder(cfg).state_dict(), meta={"steps": steps}
    )
    checkpoint.save(ckpt, path)
    return ckpt


def test_the_weights_are_the_mean_and_the_file_says_what_it_averaged(averager, tmp_path):
    exports = [_export(tmp_path / f"{i}.pt", i, 100 * (i + 1)) for i in range(3)]
    out = tmp_path / "avg.pt"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), *(str(tmp_path / f"{i}.pt") for i in range(3))],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    avg = checkpoint.load(out)
    for key, value in avg.state_dict.items():
        assert torch.allclose(value, sum(e.state_dict[key] for e in exports) / 3, atol=1e-6)
    assert avg.meta["averaged_steps"] == [100, 200, 300] and avg.meta["steps"] == 300
    avg.build()  # a usable vocoder


def test_other_models_are_refused_by_name(averager, tmp_path):
    _export(tmp_path / "a.pt", 0, 1)
    _export(tmp_path / "b.pt", 1, 2, replace(TINY_FAST, dim=8))
    with pytest.raises(SystemExit, match="b.pt: not the same model"):
        averager.average([tmp_path / "a.pt", tmp_path / "b.pt"])
    with pytest.raises(SystemExit, match="at least two"):
        averager.average([tmp_path / "a.pt"])
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit, match="bad.pt"):
        averager.average([tmp_path / "a.pt", tmp_path / "bad.pt"])
