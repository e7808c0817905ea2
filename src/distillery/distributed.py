"""Data-parallel training under a launcher (torchrun, `accelerate launch`).

A launcher starts N copies of `distillery still RECIPE` and tells each its place through the
environment: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. Nothing in the Recipe
changes. A plain process is a world of one, where every call here does nothing, so a single
process trains exactly as it would without this module.

Only plain torch.distributed is used (gloo on CPUs, NCCL on GPUs): every value that crosses
processes is a tensor, never a pickled object.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from distillery.errors import DistilleryError

# Rank 0 alone makes the Mash while the other processes wait at a barrier; an LLM teacher's Mash
# can take hours, so the wait may too. A rank that dies is noticed by the launcher, not this timeout.
TIMEOUT = timedelta(hours=24)


@dataclass(frozen=True)
class World:
    """This process's place among the launcher's: rank `rank` of `size`, `local_rank` on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files, logs and reports."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    def broadcast_int(self, value: int, device: torch.device | str = "cpu") -> int:
        """Rank 0's `value`, in every process."""
        if self.size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.long, device=device)
        dist.broadcast(tensor, src=0)
        return int(tensor.item())

    def sum(self, values: list[float], device: torch.device | str = "cpu") -> list[float]:
        """Each value summed over every process."""
        if self.size == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def check_same(self, data: bytes, what: str, device: torch.device | str = "cpu") -> None:
        """Raise unless every process holds the same `data`: each must train on the same epoch."""
        if self.size == 1:
            return
        digest = int.from_bytes(hashlib.sha256(data).digest()[:7], "big")
        low = torch.tensor([digest], dtype=torch.long, device=device)
        high = low.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        if low.item() != high.item():
            raise RuntimeError(f"the processes disagree on {what}: something in it is not deterministic")


def from_env(env: dict[str, str] | None = None) -> World:
    """This process's World, from the variables a launcher sets (a world of one without them)."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env:
        mpi = max(int(env.get(name, "1") or 1) for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE"))
        # `accelerate launch --cpu --num_processes N` starts one process (its multi-CPU launch goes
        # through mpirun): training it alone would quietly ignore the N asked for.
        if mpi > 1 or ("MASTER_ADDR" in env and env.get("ACCELERATE_USE_CPU", "").lower() == "true"):
            raise DistilleryError("this process was started for a multi-process run by mpirun (or `accelerate "
                                  "launch --cpu`), which distillery does not join. Fix: `torchrun --nproc-per-node N "
                                  "--no-python distillery still RECIPE` on CPUs, or `accelerate launch --multi_gpu` "
                                  "on GPUs.")
        return World()
    try:
        size, rank = int(env["WORLD_SIZE"]), int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise DistilleryError(f"WORLD_SIZE={env.get('WORLD_SIZE')!r}, RANK={env.get('RANK')!r}: not whole numbers. "
                              "Fix: start distillery with torchrun or `accelerate launch`, which set them.") from None
    if not 0 <= rank < size:
        raise DistilleryError(f"RANK={rank} is not below WORLD_SIZE={size}. Fix: start distillery with torchrun "
                              "or `accelerate launch`, which set both.")
    for name, what in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")):
        if size > 1 and env.get(name, "").lower() in ("1", "true"):
            raise DistilleryError(f"the Accelerate config asks for {what}, which distillery does not do: the Still "
                                  "trains a whole copy of the student in every process (DDP). Fix: set "
                                  "`distributed_type: MULTI_GPU` in the Accelerate config, or launch with torchrun.")
    return World(rank=rank, size=size, local_rank=local_rank)


def start(world: World, device: torch.device) -> None:
    """Join the launcher's process group: NCCL between GPUs, gloo between CPU processes."""
    if world.size == 1 or dist.is_initialized():
        return
    if device.type == "mps":
        raise DistilleryError("still.device mps trains in one process only (torch.distributed has no MPS backend). "
                              "Fix: run `distillery still RECIPE` without a launcher, or set `still.device: cpu`.")
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise DistilleryError(f"WORLD_SIZE is {world.size} but {name} is not set. Fix: start distillery with "
                                  "torchrun or `accelerate launch`, which set it.")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=world.rank, world_size=world.size,
                            timeout=TIMEOUT)


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
