"""zoo under torchrun (or SLURM): who this process is, which ranks share a cache, and one download per cache.

`torchrun --nproc_per_node=8 train.py` starts 8 processes that all want the same pretrained weights. Call, on
every rank, after `torch.distributed.init_process_group`:

    zoo.distributed.prefetch("resnet50")          # one rank per cache downloads; the others then read it
    with zoo.distributed.leader_first():          # or any work of your own, leaders first
        model = zoo.get_model("resnet50")

Which ranks share a cache is measured, not guessed: each rank writes a probe file into its zoo home and looks
for the others'; a rank's leader is the lowest rank whose probe it sees (a home shared by the whole job: one
leader; node-local homes: one per node). A leader's failure is the same one-line error on every rank of its
cache, never a hang. `zoo.get_model` itself never runs a collective: `if rank == 0: zoo.get_model(...)` stays
fine. The simplest recipe of all needs none of this: `zoo fetch resnet50` once before `torchrun`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .errors import ZooError
from .store import paths

# Coordination waits as long as a download may take: a gloo group of its own, so that a long fetch on the
# leader never trips the watchdog of an NCCL training group.
COORDINATION_TIMEOUT = timedelta(hours=6)

_ENV = {
    "rank": ("RANK", "SLURM_PROCID"),
    "world_size": ("WORLD_SIZE", "SLURM_NTASKS"),
    "local_rank": ("LOCAL_RANK", "SLURM_LOCALID"),
    "local_world_size": ("LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE"),
}


@dataclass(frozen=True)
class World:
    """This process's place in the job: global and local rank, and how many there are."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def world() -> World:
    """The job as torchrun (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`) or SLURM (`SLURM_PROCID`,
    `SLURM_NTASKS`, `SLURM_LOCALID`, `SLURM_NTASKS_PER_NODE`) describes it; one process when neither does."""
    found: dict[str, int] = {}
    for field, names in _ENV.items():
        for name in names:
            raw = os.environ.get(name, "").strip()
            if not raw:
                continue
            # SLURM writes per-node task counts as "4(x2)": the count is the first number.
            number = raw.split("(", 1)[0]
            if not number.isdigit():
                raise ZooError(f"{name}={raw!r} is not a whole number (set by torchrun or SLURM)")
            found[field] = int(number)
            break
    w = World(**found)
    if not 0 <= w.rank < w.world_size or not 0 <= w.local_rank < max(w.local_world_size, 1):
        raise ZooError(
            f"inconsistent job: rank {w.rank} of {w.world_size}, local rank {w.local_rank} of {w.local_world_size}"
        )
    return w


def device() -> Any:
    """`cuda:LOCAL_RANK` (made the current device) when CUDA is there, else the CPU: each rank its own GPU."""
    import torch

    if torch.cuda.is_available():
        index = world().local_rank % torch.cuda.device_count()
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


def device_for(requested: Any) -> Any:
    """The device one of zoo's commands uses: this rank's own (`device()`) for "auto" in a distributed run,
    else the one asked for."""
    return device() if requested == "auto" and world().is_distributed else requested


_coordination: Any = None
_opened = False  # whether init_for_command opened the default group (a user's own group is theirs to close)


def init_for_command() -> bool:
    """Open the default process group for one of zoo's own commands started by torchrun (nccl with CUDA, else
    gloo); False for a single process. A user's own script opens its group itself."""
    if not world().is_distributed:
        return False
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if not os.environ.get("MASTER_ADDR"):
            raise ZooError("a distributed run needs MASTER_ADDR and MASTER_PORT: start it with torchrun")
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        w = world()  # given explicitly: under srun alone, RANK and WORLD_SIZE are SLURM's variables
        dist.init_process_group(backend, rank=w.rank, world_size=w.world_size, timeout=COORDINATION_TIMEOUT)
        global _opened
        _opened = True
    return True


def close_for_command() -> None:
    """Destroy the process group `init_for_command` opened (no-op otherwise). Left to the interpreter's exit,
    gloo's threads were torn down while joinable: a rank that finished first aborted with "terminate called
    without an active exception" in 2 of 12 two-rank `zoo generate` runs (SIGABRT, so torchrun failed)."""
    global _opened, _coordination
    if not _opened:
        return
    import torch.distributed as dist

    _opened = False
    _coordination = None
    if dist.is_initialized():
        dist.destroy_process_group()


def on_rank_zero(fn: Any) -> None:
    """Run `fn` on rank 0 while the others wait; if it fails, every rank raises the same one-line ZooError
    (rank 0 its own error). One process just runs it."""
    if not _active():
        fn()
        return
    import torch.distributed as dist

    failure: list[Any] = [None]
    try:
        if dist.get_rank() == 0:
            try:
                fn()
            except Exception as e:
                failure[0] = " ".join(str(e).split()) or type(e).__name__
                raise
    finally:
        dist.broadcast_object_list(failure, src=0, group=_group())
    if failure[0] is not None and dist.get_rank() != 0:
        raise ZooError(failure[0])


def barrier() -> None:
    """Wait for every rank (nothing for one process)."""
    if _active():
        import torch.distributed as dist

        dist.barrier(group=_group())


def _group() -> Any:
    """A gloo group over the whole job for zoo's coordination (the default group if it is gloo already)."""
    global _coordination
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        raise ZooError(
            "zoo.distributed needs torch.distributed initialised on every rank first "
            "(torch.distributed.init_process_group), or run zoo's own commands under torchrun"
        )
    if dist.get_backend() == "gloo":
        return None  # the default group
    if _coordination is None:
        _coordination = dist.new_group(backend="gloo", timeout=COORDINATION_TIMEOUT)
    return _coordination


def _active() -> bool:
    import torch.distributed as dist

    return world().is_distributed and dist.is_available() and dist.is_initialized()


def cache_leader() -> int:
    """The lowest rank that shares this process's zoo home (measured with probe files; collective)."""
    import torch.distributed as dist

    if not _active():
        return world().rank
    group = _group()
    me = dist.get_rank()
    token = [os.urandom(8).hex() if me == 0 else None]
    dist.broadcast_object_list(token, src=0, group=group)
    probes = paths.home() / "probes" / token[0]
    try:
        paths.make_dirs(probes)
        (probes / str(me)).write_text(str(os.getpid()))
        wrote = True
    except (OSError, ZooError):  # a read-only zoo home: nothing is downloaded into it, each rank reads alone
        wrote = False
    dist.barrier(group=group)  # every rank takes part in every barrier, whatever it could write
    try:
        seen = sorted(int(p.name) for p in probes.iterdir() if p.name.isdigit()) if wrote else [me]
    except OSError:
        seen = [me]
    dist.barrier(group=group)  # every rank has looked before any probe is removed
    with contextlib.suppress(OSError):
        (probes / str(me)).unlink()
    dist.barrier(group=group)
    if me == min(seen) and wrote:
        shutil.rmtree(probes, ignore_errors=True)
    return min(seen)


@contextlib.contextmanager
def leader_first() -> Iterator[None]:
    """Run the body on each cache's leader first, then on the other ranks (collective: call it on every rank).

    If a leader's body fails, the ranks that share its cache raise the same one-line ZooError instead of
    running the body; the leader raises its own error. One process alone just runs the body."""
    if not _active():
        yield
        return
    import torch.distributed as dist

    group = _group()
    me, leader = dist.get_rank(), cache_leader()
    outcomes: list[Any] = [None] * dist.get_world_size()
    if me == leader:
        failure = None
        try:
            yield
        except BaseException as e:
            failure = " ".join(str(e).split()) or type(e).__name__
            raise
        finally:
            dist.all_gather_object(outcomes, (me, failure), group=group)
        return
    dist.all_gather_object(outcomes, (leader, None), group=group)
    failure = next((f for r, f in outcomes if r == leader and f is not None), None)
    if failure is not None:
        raise ZooError(f"rank {leader} (the leader of this cache) failed: {failure}")
    yield


def prefetch(*keys: str) -> None:
    """Make every file of the weights `keys` ("resnet50", "resnet50.imagenet1k_v2") verified in each rank's
    cache, downloaded once per cache by its leader (collective: call it on every rank)."""
    from . import registry
    from .weights.files import verified_files

    wanted = [registry.get_weights(key) for key in keys]  # a typo fails on every rank alike, before any wait
    # The leaders fetch and verify; then the others find the files, verified by the leader's record.
    with leader_first():
        for w in wanted:
            verified_files(w, progress=None)
