"""Pack windows from many tracks into fixed-size batches, so a GPU stays busy on short files
and memory stays bounded by the batch size on long ones."""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

import torch

from .device import inference_context, to_device


# A batch size counts windows of this many mel frames (the v1/v2 vocoders' windows, about 3 s):
# a model with longer windows gets proportionally fewer per call, so a batch holds the same
# frames, and the same memory, whatever the window length.
BATCH_UNIT_FRAMES = 256


def windows_per_batch(batch_size: int, window_frames: int) -> int:
    """How many ``window_frames``-frame windows make ``batch_size`` windows of BATCH_UNIT_FRAMES."""
    return max(1, batch_size * BATCH_UNIT_FRAMES // max(window_frames, BATCH_UNIT_FRAMES))


def in_parts(model: Callable[[torch.Tensor], torch.Tensor], size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model`` run on at most ``size`` windows at a time (a vocoder's ``cpu_batch``)."""
    return lambda batch: torch.cat([model(part) for part in batch.split(size)])


class Job:
    """Windows of one track waiting for a model; ``outputs`` fills in as batches run."""

    def __init__(self, windows: torch.Tensor, payload: Any):
        self.windows = windows  # (N, ...) model inputs
        self.payload = payload
        self.outputs: list[torch.Tensor] = []
        self.taken = 0  # windows handed to a batch so far
        self.done = 0  # windows whose outputs are back

    @property
    def complete(self) -> bool:
        return self.done == len(self.windows)

    def result(self) -> torch.Tensor:
        # one batch held all its windows: no copy (a 1024-frame vocoder's features are ~7 MB a window)
        return self.outputs[0] if len(self.outputs) == 1 else torch.cat(self.outputs)


class BatchQueue:
    """Runs ``model`` over windows of queued jobs, ``batch_size`` windows at a time.

    ``on_batch(job, n)`` is told after every batch how many of a job's windows it finished.
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        batch_size: int,
        device: torch.device,
        on_batch: Callable[[Job, int], None] | None = None,
    ):
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.on_batch = on_batch
        self.jobs: deque[Job] = deque()

    def add(self, job: Job) -> None:
        self.jobs.append(job)

    def pending(self) -> int:
        return sum(len(j.windows) - j.taken for j in self.jobs)

    def run(self, flush: bool = False) -> list[Job]:
        """Run every full batch (and, with ``flush``, the last partial one); return finished jobs."""
        finished: list[Job] = []
        while self.jobs and (self.pending() >= self.batch_size or flush):
            finished += self._step()
        return finished

    def _step(self) -> list[Job]:
        parts: list[tuple[Job, int, int]] = []
        room = self.batch_size
        for job in self.jobs:
            n = min(room, len(job.windows) - job.taken)
            if n:
                parts.append((job, job.taken, n))
                job.taken += n
                room -= n
            if room == 0:
                break
        batch = torch.cat([job.windows[start : start + n] for job, start, n in parts])
        with inference_context(self.device):
            out = self.model(to_device(batch, self.device)).float()
        offset = 0
        for job, _, n in parts:
            job.outputs.append(out[offset : offset + n])
            job.done += n
            offset += n
            if self.on_batch:
                self.on_batch(job, n)
        finished = []
        while self.jobs and self.jobs[0].complete:
            finished.append(self.jobs.popleft())
        return finished


# --batch-size auto. On a CPU larger batches buy nothing (the cores are busy at 16), so auto is
# the default there. On a GPU the batch fills a share of the free memory: the rest is left for
# the allocator's fragmentation, cuDNN workspaces and other processes.
CPU_BATCH = 16
AUTO_SHARE = 0.5
AUTO_RANGE = (16, 1024)
PROBE_WINDOWS = 8


def batch_for_memory(free_bytes: float, per_window_bytes: float, share: float = AUTO_SHARE) -> int:
    """The largest power of two (within ``AUTO_RANGE``) whose windows fit in ``share`` of
    ``free_bytes``; a power of two, because cuDNN picks its kernels by shape."""
    lo, hi = AUTO_RANGE
    n = int(share * free_bytes / max(per_window_bytes, 1.0))
    n = max(lo, min(hi, n))
    return 1 << (n.bit_length() - 1)


def auto_batch_size(
    device: torch.device, probes: list[tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, float]]
) -> int:
    """Windows per model call for ``--batch-size auto``: ``CPU_BATCH`` off CUDA; on CUDA,
    each ``(model, window, units)`` of ``probes`` is run on ``PROBE_WINDOWS`` copies of its
    window, and the most memory one batch-size unit needed (a window's, divided by the
    ``units`` of the batch size it counts for, ``windows_per_batch``) sizes the batch to the
    free memory."""
    if device.type != "cuda":
        return CPU_BATCH
    per_window = 1.0
    for model, window, units in probes:
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        batch = window.expand(PROBE_WINDOWS, *window.shape[1:]).contiguous()
        with inference_context(device):
            model(to_device(batch, device))
        torch.cuda.synchronize(device)
        used = torch.cuda.max_memory_allocated(device) - before
        per_window = max(per_window, used / PROBE_WINDOWS / units)
    free, _ = torch.cuda.mem_get_info(device)
    return batch_for_memory(free, per_window)
