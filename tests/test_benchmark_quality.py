"""benchmarks/quality.py's ViSQOL hook, in benchmarks/vocoder_table.py. The metric itself needs
visqol-python, in the `benchmark` extra that .ci/run installs: in CI its test fails rather than
skips without it."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "vocoder_table.py"


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("benchmark_vocoder_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _clip(seconds: float, noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * 22050)) / 22050
    clean = 0.3 * torch.sin(2 * torch.pi * 220 * t) + 0.1 * torch.sin(2 * torch.pi * 660 * t)
    return clean + noise * torch.randn(t.shape, generator=g)


def test_no_visqol_column_without_the_package(quality, monkeypatch):
    monkeypatch.setitem(sys.modules, "visqol", None)  # import visqol -> ImportError
    assert quality.visqol_scorer(10.0) is None


def test_the_vocoder_table_averages_what_the_scorer_says(quality):
    calls = []

    def scorer(ref, out):
        calls.append(len(ref))
        return 3.0 + len(calls)

    class Identity(torch.nn.Module):  # mel -> silence of the right length
        def forward(self, mel):
            return torch.zeros(mel.shape[0], mel.shape[-1] * 256)

    rows = quality.vocoder_table([_clip(0.5), _clip(0.3)], {"zero": Identity()}, scorer)
    assert rows["zero"]["visqol"] == pytest.approx(4.5) and len(calls) == 2
    assert "visqol" not in quality.vocoder_table([_clip(0.5)], {"zero": Identity()})["zero"]


def test_visqol_ranks_a_clean_copy_above_a_noisy_one(quality):
    score = quality.visqol_scorer(2.0)
    if score is None:
        if os.environ.get("CI", "").lower() in {"1", "true"}:
            pytest.fail("visqol-python is not installed; .ci/run installs it with the benchmark extra")
        pytest.skip("visqol-python is not installed: pip install -e '.[benchmark]'")
    ref = _clip(3.0, 0.005)
    clean, noisy = score(ref, ref), score(ref, ref + 0.1 * torch.randn_like(ref))
    assert 1 <= noisy < clean <= 5.0 + 1e-6


def test_int8_rows_are_the_fast_vocoders_as_convert_runs_them(quality):
    from genreshift.device import Int8Linear
    from genreshift.vocoder import FastVocoder, GriffinLim
    from helpers import TINY_FAST

    nets = quality.in_int8({"fast": FastVocoder(TINY_FAST).eval(), "griffinlim": GriffinLim()})
    assert set(nets) == {"fast, int8", "griffinlim"}
    assert any(isinstance(m, Int8Linear) for m in nets["fast, int8"].modules())


def test_the_distance_split_adds_up_and_independent_noise_costs_ln_2(quality):
    import math

    g = torch.Generator().manual_seed(1)
    ref, other = (0.1 * torch.randn(3 * 22050, generator=g) for _ in range(2))
    parts = quality.stft_distance_parts(ref, other)
    bands = sum(parts[f"band{i}"] for i in range(len(quality.BANDS)))
    assert bands == pytest.approx(parts["logmag"], rel=1e-5)
    assert parts["logmag"] == pytest.approx(math.log(2), abs=0.03)  # white noise against another
    same = quality.stft_distance_parts(ref, ref.clone())
    assert same["sc"] == 0 and same["logmag"] == 0
