"""scripts/package_weights.py: release files in fp16 with their registry rows."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest
import torch

import genreshift
from genreshift import checkpoint
from genreshift.config import FastVocoderConfig, MelConfig
from genreshift.vocoder import FastVocoder

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "package_weights.py"


@pytest.fixture
def packager(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("package_weights", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "WEIGHTS", tmp_path / "weights")
    (tmp_path / "weights").mkdir()
    return module


def test_a_fast_vocoder_gets_its_inference_settings_and_its_whole_history(packager, tmp_path):
    cfg = FastVocoderConfig(dim=8, intermediate_dim=8, n_blocks=1, magnitude_prior=True, refine_iters=16)
    ckpt = checkpoint.Checkpoint("vocoder", "fast", cfg, MelConfig(), FastVocoder(cfg).state_dict(),
                                 meta={"steps": 5, "init_steps": 30}, extra={"training": {"step": 5}})  # fmt: skip
    checkpoint.save(ckpt, tmp_path / "best.pt")
    row = packager.package("vocoder", "fast", tmp_path / "best.pt", "v9", None, {"refine_iters": 4, "mel_iters": 2})
    released = checkpoint.load(tmp_path / "weights" / "fast-v9.pt")
    assert (released.config.refine_iters, released.config.mel_iters, released.extra) == (4, 2, {})
    assert released.config.magnitude_prior and released.config.dim == 8
    assert row["description"] == "fast vocoder, 35 training steps"
    assert (row["version"], row["package_version"]) == ("v9", genreshift.__version__)  # which release it ships in
    data = (tmp_path / "weights" / "fast-v9.pt").read_bytes()
    assert (row["sha256"], row["size"]) == (hashlib.sha256(data).hexdigest(), len(data))
    floats = [v for v in released.state_dict.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)  # stored in fp16 ...
    assert all(p.dtype == torch.float32 for p in released.build().parameters())  # ... built in fp32


def test_out_writes_a_candidate_and_leaves_the_registry_alone(packager, tmp_path, monkeypatch, capsys):
    cfg = FastVocoderConfig(dim=8, intermediate_dim=8, n_blocks=1, phase="integrated")
    ckpt = checkpoint.Checkpoint("vocoder", "fast", cfg, MelConfig(), FastVocoder(cfg).state_dict(), meta={"steps": 7})
    checkpoint.save(ckpt, tmp_path / "fast.pt")
    registry = tmp_path / "weights" / "registry.json"
    registry.write_text('{"version": 1, "files": []}\n')
    monkeypatch.setattr("sys.argv", ["package_weights.py", "--vocoder", f"fast={tmp_path / 'fast.pt'}", "--version",
                                     "v3-r9", "--window-frames", "1024", "--out", str(tmp_path / "cand")])  # fmt: skip
    packager.main()
    kept = checkpoint.load(tmp_path / "cand" / "fast-v3-r9.pt")
    assert kept.config.phase == "integrated" and kept.config.window_frames == 1024 and kept.extra == {}
    assert registry.read_text() == '{"version": 1, "files": []}\n'
    assert not (tmp_path / "weights" / "fast-v3-r9.pt").exists()
    digest = hashlib.sha256((tmp_path / "cand" / "fast-v3-r9.pt").read_bytes()).hexdigest()
    assert digest in capsys.readouterr().out
