"""torchrun in one place: which process this is, its device, and the few collectives the
commands need. Nobody else reads ``RANK`` or ``WORLD_SIZE`` from the environment.

Every function works in a plain single process too (rank 0 of a world of 1), so callers do
not branch on how they were started. torch is imported inside the functions: the CLI reads
the rank before it has any reason to load torch.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import time
from typing import Any, Iterator


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    """This process's number on its machine: it picks the GPU."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def local_world_size() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def is_main() -> bool:
    return rank() == 0


def local_device(device):
    """Under torchrun, a CUDA device means this rank's own GPU (``cuda:LOCAL_RANK``), made
    current so NCCL and new tensors use it. Any other device, or a single process: unchanged."""
    import torch

    from .errors import DeviceError

    if world_size() <= 1 or device.type != "cuda":
        return device
    local = local_rank()
    if local >= torch.cuda.device_count():
        raise DeviceError(f"LOCAL_RANK {local} needs GPU {local}, but only {torch.cuda.device_count()} exist here; "
                          "start at most that many processes per machine (--nproc-per-node)")  # fmt: skip
    device = torch.device("cuda", local)
    torch.cuda.set_device(device)
    return device


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity, as under taskset or a container's cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def share_cpu_threads() -> int:
    """Divide this machine's cores among its ranks (torchrun otherwise leaves each rank one
    thread); returns the threads this rank now uses. A single process keeps torch's choice."""
    import torch

    if local_world_size() > 1:
        torch.set_num_threads(max(1, usable_cpus() // local_world_size()))
    return torch.get_num_threads()


_round: dict[str, Any] = {}  # the store and round number of the group this process is in
JOIN_TIMEOUT = datetime.timedelta(minutes=10)


@contextlib.contextmanager
def process_group(backend: str) -> Iterator[None]:
    """Join torchrun's process group for the block (``gloo`` or ``nccl``); a no-op in a single
    process or when the group already exists.

    The group lives under a prefix of its own round in torchrun's key-value store: that store
    outlives an elastic restart, and torch's own env:// set-up would read the dead round's
    addresses from it (gloo then fails to connect or hangs; seen with torch 2.9)."""
    if world_size() <= 1:  # before importing torch.distributed: a single process needs none of it
        yield
        return
    import torch.distributed as dist

    if dist.is_initialized():
        yield
        return
    store = _store()
    number = _join_round(store)
    group = dist.PrefixStore(f"round-{number}", store)
    dist.init_process_group(backend, store=dist.PrefixStore("group", group), rank=rank(), world_size=world_size())
    _round.update(store=group, number=number)
    try:
        yield
    finally:
        _round.clear()
        dist.destroy_process_group()


def restarted() -> bool:
    """Whether this torchrun job ran before (an elastic restart), so what exists is its own
    work. Only known inside ``process_group``; torchrun's TORCHELASTIC_RESTART_COUNT is not
    enough: it stays 0 on machines whose ranks were stopped because another machine failed."""
    return _round.get("number", 1) > 1


def _store():
    """A client of torchrun's store (or, without torchrun's agent, rank 0 serves one)."""
    import torch.distributed as dist

    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size(),
                          is_master=is_main() and not agent, timeout=JOIN_TIMEOUT)  # fmt: skip
    return dist.PrefixStore("genreshift", store)


def _join_round(store) -> int:
    """A number all ranks of this start agree on, new at every start of the job.

    Rank 0 counts its starts; every other rank counts its own arrivals and waits for rank 0 to
    welcome that arrival (an arrival number is never reused, so no welcome is stale) until
    rank 0 has heard from all of them. torchrun stops every rank of a round before it starts
    the next, so no rank of an old round takes part."""
    me = rank()
    if me != 0:
        arrival = store.add(f"arrival/{me}", 1)
        store.wait([f"welcome/{me}/{arrival}"])
        number = int(store.get(f"welcome/{me}/{arrival}"))
        store.set(f"joined/{number}/{me}", "1")
        return number
    number = store.add("round", 1)
    waiting, deadline = set(range(1, world_size())), time.monotonic() + JOIN_TIMEOUT.total_seconds()
    while waiting:
        for other in sorted(waiting):
            if store.check([f"joined/{number}/{other}"]):
                waiting.discard(other)
            else:  # welcome its latest arrival, whether or not it has come yet
                store.set(f"welcome/{other}/{store.add(f'arrival/{other}', 0)}", str(number))
        if waiting and time.monotonic() > deadline:
            raise TimeoutError(f"ranks {sorted(waiting)} did not join within {JOIN_TIMEOUT}")
        time.sleep(0.05)
    return number


def gather(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` (picklable), in rank order, on rank 0; None on the others."""
    if world_size() <= 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] | None = [None] * world_size() if is_main() else None
    dist.gather_object(obj, out, dst=0)
    return out


def counters(name: str):
    """Shared integer counters (``add(key, n)`` returns the new sum) in torchrun's store, new
    for every round of the job. Counters, unlike collectives, never make a rank wait: ranks
    that finish early only poll. Only inside ``process_group``."""
    import torch.distributed as dist

    return dist.PrefixStore(name, _round["store"])


def wait_for_all(store, key: str, tick=None, every: float = 0.25) -> None:
    """Count this rank in ``key``, then poll until every rank has; ``tick()`` runs between
    polls (rank 0 redraws progress there). Polling has no deadline, unlike a barrier: ranks
    whose share ended early may wait for hours for one with a long track."""
    store.add(key, 1)
    while store.add(key, 0) < world_size():
        if tick is not None:
            tick()
        time.sleep(every)
