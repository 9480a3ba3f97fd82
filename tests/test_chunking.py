import pytest
import torch

from genreshift.chunking import _fade, _overlaps, plan_windows, split, stitch
from genreshift.config import ChunkConfig


@pytest.mark.parametrize("length", [1, 7, 64, 128, 129, 200, 1000, 1234])
@pytest.mark.parametrize("cfg", [ChunkConfig(128, 32), ChunkConfig(64, 8, 16), ChunkConfig(16, 0, 3)])
def test_stitching_unmodified_windows_returns_the_input(length, cfg):
    x = torch.randn(2, 5, length)
    plan = plan_windows(length, cfg)
    windows = split(x, plan)
    assert windows.shape == (len(plan.windows), 2, 5, cfg.size + 2 * cfg.context)
    assert torch.allclose(stitch(windows, plan), x, atol=1e-6)


@pytest.mark.parametrize("length", [5, 300, 1001])
def test_stitching_at_an_output_rate(length):
    """Vocoder case: every frame becomes ``scale`` samples."""
    cfg = ChunkConfig(64, 4, 8)
    x = torch.randn(3, length)
    plan = plan_windows(length, cfg)
    up = split(x, plan).repeat_interleave(10, dim=-1)
    assert torch.allclose(stitch(up, plan, scale=10), x.repeat_interleave(10, dim=-1), atol=1e-6)


def test_windows_cover_everything_and_weights_sum_to_one():
    plan = plan_windows(1000, ChunkConfig(128, 32, 4))
    cover = torch.zeros(1000)
    shared = _overlaps(plan)
    for i, w in enumerate(plan.windows):
        cover[w.target_start : w.target_start + w.keep_length] += _fade(w.keep_length, shared[i], shared[i + 1], "cpu")
        assert w.source_start >= 0 and w.source_start + plan.window_length <= 1000
    assert torch.allclose(cover, torch.ones(1000), atol=1e-6)


def test_cross_fade_has_no_seam():
    """Windows that each add a different constant blend smoothly: no jump bigger than the
    difference spread over the overlap."""
    cfg = ChunkConfig(100, 40)
    plan = plan_windows(400, cfg)
    windows = torch.stack([torch.full((100,), float(i)) for i in range(len(plan.windows))])
    out = stitch(windows, plan)
    assert out.diff().abs().max() < 0.1  # a hard cut would jump by 1.0


def test_context_is_clamped_to_the_signal():
    plan = plan_windows(300, ChunkConfig(64, 8, 16))
    first, last = plan.windows[0], plan.windows[-1]
    assert first.source_start == 0 and first.keep_offset == 0
    assert last.source_start + plan.window_length == 300


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        ChunkConfig(32, 32)
    with pytest.raises(ValueError):
        plan_windows(0, ChunkConfig())
