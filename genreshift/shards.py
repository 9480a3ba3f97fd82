"""A library split across processes: ``--shard K/N`` (job arrays) and torchrun ranks.

Every process finds the same sorted file list and computes the same split, so no process
hands out work and a restarted one takes exactly the share it had. Shares are balanced by
duration, longest file first, each to the share with the least audio so far: one 3-hour
recording and 500 songs end up as even as they can, which counting files would not do.
"""

from __future__ import annotations

import heapq
import time
from typing import Callable, Sequence, TypeVar

from . import distrib

T = TypeVar("T")
MAX_SHARES = 1_000_000  # more than any job array; a typo like 0/40000000000 is refused, not planned


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N), K counted from 0 as SLURM_ARRAY_TASK_ID and Kubernetes'
    JOB_COMPLETION_INDEX are; ValueError with a one-line reason otherwise."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"'{text}' is not K/N (for example 0/4)") from None
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"'{text}': need 0 <= K < N")
    if n > MAX_SHARES:
        raise ValueError(f"'{text}': N may be at most {MAX_SHARES}")
    return k, n


def balanced_split(weights: Sequence[float], parts: int) -> list[int]:
    """The part (0..parts-1) of each item: longest first, each to the lightest part so far
    (ties to the lower item and part number, so every process computes the same split)."""
    # parts beyond the item count would stay empty (ties go to the lower part): leave them out
    heap = [(0.0, p) for p in range(min(parts, len(weights)))]
    owner = [0] * len(weights)
    for i in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        load, p = heapq.heappop(heap)
        owner[i] = p
        heapq.heappush(heap, (load + weights[i], p))
    return owner


def take_share(items: list[T], weight: Callable[[T], float], shares: Sequence[tuple[int, int]]) -> list[T]:
    """The items of share K of N, then of share k of n within it, ...; order is kept."""
    for k, n in shares:
        owner = balanced_split([weight(x) for x in items], n)
        items = [x for x, o in zip(items, owner) if o == k]
    return items


def process_shares(shard: tuple[int, int] | None) -> tuple[tuple[int, int], ...]:
    """This process's shares: the job array's ``--shard``, then the torchrun rank within it."""
    shares = [shard] if shard else []
    if distrib.world_size() > 1:
        shares.append((distrib.rank(), distrib.world_size()))
    return tuple(shares)


class RankProgress:
    """Progress of all ranks in one bar on rank 0.

    Each rank adds the audio seconds (as milliseconds) and files it finishes to shared
    counters; rank 0 redraws ``bar`` from the sums a few times a second. Other ranks print
    nothing: rank 0 reports their failures once their results arrive."""

    def __init__(self, bar=None, every: float = 0.25):
        self.store = distrib.counters("convert")
        self.bar = bar  # a display.ConvertProgress on rank 0, None elsewhere
        self.every = every
        self.shown = 0.0

    def __call__(self, seconds: float, result) -> None:
        if seconds:  # with a finished file come the rest of its seconds (a failed one's too)
            self.store.add("ms", round(seconds * 1000))
        if result is not None:
            self.store.add("files", 1)
            if self.bar is not None and result.status == "failed":
                self.bar.failed(result)
        self.tick()

    def tick(self, force: bool = False) -> None:
        if self.bar is None or (not force and time.monotonic() - self.shown < self.every):
            return
        self.shown = time.monotonic()
        self.bar.show(self.store.add("ms", 0) / 1000, self.store.add("files", 0))

    def finish(self) -> None:
        """Wait (polling, no deadline) until every rank has finished its share."""
        distrib.wait_for_all(self.store, "ranks done", self.tick)
        self.tick(force=True)
