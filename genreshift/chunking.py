"""Split a long signal into overlapping windows and stitch processed windows back.

The same two functions serve the translator (windows of mel frames, output at the same
rate) and the vocoder (windows of mel frames, output ``hop`` samples per frame).

Each window keeps a *core* of ``size`` frames; neighbouring cores overlap by ``overlap``
frames and are cross-faded with sin^2 / cos^2 weights that sum to one. ``context`` extra frames on each
side are given to the model and then thrown away, so that a model with a wide receptive
field sees the same neighbourhood it would see in one whole-file pass. Like demucs'
``apply_model``, stitching divides by the summed weights, so the weights always sum to one
and stitching unmodified windows returns the input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import ChunkConfig


@dataclass(frozen=True)
class Window:
    source_start: int  # first frame of the input given to the model
    keep_offset: int  # where the kept core starts inside the model's window
    keep_length: int  # frames kept
    target_start: int  # where the core lands in the stitched output


@dataclass(frozen=True)
class Plan:
    length: int  # frames in the signal
    window_length: int  # frames in every model input (core + context, padded if short)
    overlap: int
    windows: tuple[Window, ...]
    # Frames the first core shares with a window before it and the last with one after it:
    # 0 for a whole signal; set by ``subplan`` so a slice of a plan keeps its true fades.
    lead: int = 0
    trail: int = 0


def plan_windows(length: int, cfg: ChunkConfig) -> Plan:
    """Place cores every ``size - overlap`` frames until one reaches the end; the last core
    is cut short at the end of the signal.

    A window's context is clamped to the signal, so near the ends the model sees the true
    signal edge, exactly as a whole-file pass would.
    """
    if length <= 0:
        raise ValueError("cannot split an empty signal")
    step = cfg.size - cfg.overlap
    span = cfg.size + 2 * cfg.context
    starts = [0]
    while starts[-1] + cfg.size < length:
        starts.append(starts[-1] + step)
    windows = []
    for start in starts:
        keep = min(cfg.size, length - start)
        source = min(max(start - cfg.context, 0), max(length - span, 0))
        windows.append(Window(source, start - source, keep, start))
    return Plan(length, span, cfg.overlap, tuple(windows))


def split(x: torch.Tensor, plan: Plan) -> torch.Tensor:
    """(..., L) -> (N, ..., window_length) model inputs; short signals are edge-padded."""
    if x.shape[-1] < plan.window_length:
        tail = x[..., -1:].expand(*x.shape[:-1], plan.window_length - x.shape[-1])
        x = torch.cat([x, tail], dim=-1)
    return torch.stack([x[..., w.source_start : w.source_start + plan.window_length] for w in plan.windows])


def _fade(length: int, fade_in: int, fade_out: int, device: torch.device | str) -> torch.Tensor:
    """Weights of one core: sin^2 over the first overlap, cos^2 over the last, one elsewhere.

    Neighbouring ramps sample the same points, so they sum to exactly one (sin^2 + cos^2).
    Ramps start above zero so that the division in ``stitch`` is always well defined.
    """
    w = torch.ones(length, device=device)
    if fade_in:
        t = (torch.arange(fade_in, device=device) + 0.5) / fade_in
        w[:fade_in] *= torch.sin(t * math.pi / 2) ** 2
    if fade_out:
        t = (torch.arange(fade_out, device=device) + 0.5) / fade_out
        w[length - fade_out :] *= torch.cos(t * math.pi / 2) ** 2
    return w


def stitch(outputs: torch.Tensor, plan: Plan, scale: int = 1) -> torch.Tensor:
    """(N, ..., window_length * scale) model outputs -> (..., length * scale).

    ``scale`` is output samples per input frame: 1 for the translator, ``hop`` for a vocoder.
    """
    out, total = accumulate(outputs, plan, scale)
    return out / total


def accumulate(outputs: torch.Tensor, plan: Plan, scale: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The weighted sum of the cores and the sum of their weights, before ``stitch`` divides.

    Streaming keeps these apart at a segment border: the two segments' sums over the
    frames their windows share add up to exactly what one whole-signal stitch would see.
    """
    out = outputs.new_zeros(*outputs.shape[1:-1], plan.length * scale)
    total = outputs.new_zeros(plan.length * scale)
    shared = _overlaps(plan)
    for i, (w, y) in enumerate(zip(plan.windows, outputs)):
        core = y[..., w.keep_offset * scale : (w.keep_offset + w.keep_length) * scale]
        n = w.keep_length * scale
        weight = _fade(n, shared[i] * scale, shared[i + 1] * scale, outputs.device)
        lo = w.target_start * scale
        out[..., lo : lo + n] += core * weight
        total[lo : lo + n] += weight
    return out, total


def subplan(plan: Plan, first: int, stop: int, source_origin: int, target_origin: int) -> Plan:
    """Windows ``first`` to ``stop - 1`` of ``plan``, for a slice of the signal.

    Sources are counted from ``source_origin`` (where the slice given to ``split`` starts)
    and targets from ``target_origin`` (where the stitched slice starts). The fades at the
    ends stay those of the whole plan, so the stitched slice equals the whole-signal
    stitch on every frame that no window outside the slice touches.
    """
    shared = _overlaps(plan)
    windows = tuple(
        Window(w.source_start - source_origin, w.keep_offset, w.keep_length, w.target_start - target_origin)
        for w in plan.windows[first:stop]
    )
    end = max(w.target_start + w.keep_length for w in windows)
    return Plan(end, plan.window_length, plan.overlap, windows, shared[first], shared[stop])


def _overlaps(plan: Plan) -> list[int]:
    """Frames shared by each pair of neighbouring cores, with ``lead`` before the first and
    ``trail`` after the last (0 for a whole signal: its own edges are not faded)."""
    w = plan.windows
    inner = [a.target_start + a.keep_length - b.target_start for a, b in zip(w, w[1:])]
    return [plan.lead, *inner, plan.trail]
